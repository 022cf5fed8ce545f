"""sterilog: sterilization and equipment compliance logger for microneedling clinics."""

__version__ = "0.1.0"
