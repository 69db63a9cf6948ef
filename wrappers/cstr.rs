// SPDX-License-Identifier: GPL-2.0

//! C strings: the language's C string literals (`c"..."`) as the kernel
//! crate's `&CStr`.
//!
//! On 7.x the crate's `CStr` is the language's (`core::ffi::CStr`), so a
//! literal is one already and [`cstr!`] gives it back unchanged. 6.12's crate
//! has its own `CStr` type, made from the literal's bytes at compile time.
//! The driver writes `cstr!(c"...")` once for both.

/// A `c"..."` literal as a `&'static kernel::str::CStr`.
#[cfg(vgpio_k7)]
macro_rules! cstr {
    ($s:literal) => {{
        // (a C string literal, or this does not compile: as on 6.12)
        const C: &'static ::kernel::str::CStr = $s;
        C
    }};
}

/// A `c"..."` literal as a `&'static kernel::str::CStr`.
#[cfg(vgpio_k612)]
macro_rules! cstr {
    ($s:literal) => {{
        const C: &'static ::kernel::str::CStr =
            match ::kernel::str::CStr::from_bytes_with_nul($s.to_bytes_with_nul()) {
                Ok(c) => c,
                // (a C string literal has exactly one NUL, at its end)
                Err(_) => panic!("not a C string"),
            };
        C
    }};
}

pub(crate) use cstr;
