"""The PLT/GOT connect() hook, the device runtime and fixed hook points for firmware."""
