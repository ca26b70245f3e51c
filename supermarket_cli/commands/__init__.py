"""The subcommands of `supermarket`, one module per family, loaded when named (see main.py).
Each module imports only click and the light defaults at its top, and its work inside."""
