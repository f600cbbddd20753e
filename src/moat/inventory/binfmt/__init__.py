"""Just enough of ELF, PE and Mach-O to find a named section or read memory at a virtual address.

Go and Rust both embed their dependency lists in executables (Go's build info, cargo-auditable's
``.dep-v0``). They need the same two operations, so the format parsing lives here once, with every
size and count bounded because every executable in an image is untrusted input.
"""
