"""``kdmetrics report``: inputs, tables, findings, rendering and figures."""
