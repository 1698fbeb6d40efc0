"""segcheck command line: parses, calls, renders."""
