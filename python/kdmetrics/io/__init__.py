"""Reading and writing prediction files."""
