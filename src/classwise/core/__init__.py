"""What every stage stands on: the error family, strict parameter parsing, atomic writes, the device and its speed path."""
