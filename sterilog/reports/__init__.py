"""PDF reports. Nothing here imports ReportLab: only `sterilog.reports.*` modules do."""
