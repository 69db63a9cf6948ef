// SPDX-License-Identifier: GPL-2.0

//! Bitmaps of `unsigned long` words, as gpiolib passes them to
//! `get_multiple`/`set_multiple`.
//!
//! 7.x: the kernel crate's `kernel::bitmap::Bitmap`. 6.12's crate has none:
//! here the same type, with the part of its API the driver uses, in the same
//! representation (a slice of `len()` zero-sized elements whose address is
//! the first word's), so that the driver's code is one for both kernels.
//!
//! C header: `include/linux/bitmap.h`.

#[cfg(vgpio_k7)]
pub(crate) use kernel::bitmap::Bitmap;

#[cfg(vgpio_k612)]
pub(crate) use k612::Bitmap;

#[cfg(vgpio_k612)]
mod k612 {
    use super::super::bindings;

    /// A bitmap of `len()` bits in `unsigned long` words that someone else
    /// owns (7.x's `kernel::bitmap::Bitmap`).
    ///
    /// # Invariants
    ///
    /// The address of a `Bitmap` is that of `len().div_ceil(usize::BITS)`
    /// aligned words, valid while it is borrowed: for reads through
    /// `&Bitmap` (which nobody writes meanwhile), for reads and writes
    /// through `&mut Bitmap` (which nobody else uses meanwhile).
    #[cfg_attr(CONFIG_64BIT, repr(align(8)))]
    #[cfg_attr(not(CONFIG_64BIT), repr(align(4)))]
    pub(crate) struct Bitmap {
        data: [()],
    }

    impl Bitmap {
        /// # Safety
        ///
        /// `ptr` points to `nbits.div_ceil(usize::BITS)` aligned words,
        /// readable and not written for `'a`.
        pub(crate) unsafe fn from_raw<'a>(ptr: *const usize, nbits: usize) -> &'a Bitmap {
            let data: *const [()] = core::ptr::slice_from_raw_parts(ptr.cast(), nbits);
            // INVARIANT: the words are valid for `'a` (caller).
            // SAFETY: `Bitmap` is a `[()]` with a stricter alignment, which
            // `ptr` has (caller); the length is the number of bits.
            unsafe { &*(data as *const Bitmap) }
        }

        /// # Safety
        ///
        /// `ptr` points to `nbits.div_ceil(usize::BITS)` aligned words,
        /// readable, writable and used by nobody else for `'a`.
        pub(crate) unsafe fn from_raw_mut<'a>(ptr: *mut usize, nbits: usize) -> &'a mut Bitmap {
            let data: *mut [()] = core::ptr::slice_from_raw_parts_mut(ptr.cast(), nbits);
            // INVARIANT: the words are ours for `'a` (caller).
            // SAFETY: as in `from_raw`.
            unsafe { &mut *(data as *mut Bitmap) }
        }

        /// The number of bits.
        pub(crate) fn len(&self) -> usize {
            self.data.len()
        }

        /// The lowest set bit at `start` or above, if any.
        pub(crate) fn next_bit(&self, start: usize) -> Option<usize> {
            let ptr = core::ptr::from_ref(self).cast::<usize>();
            // SAFETY: the words hold `len()` bits (type invariant);
            // find_next_bit reads only those and returns `len()` or more
            // when there is none (any `start`).
            let i =
                unsafe { bindings::vgpio_find_next_bit(ptr.cast(), self.len() as _, start as _) };
            let i = i as usize;
            (i < self.len()).then_some(i)
        }

        /// The highest set bit, if any.
        pub(crate) fn last_bit(&self) -> Option<usize> {
            let ptr = core::ptr::from_ref(self).cast::<usize>();
            // SAFETY: the words hold `len()` bits (type invariant);
            // find_last_bit reads only those and returns `len()` when none
            // is set.
            let i = unsafe { bindings::vgpio_find_last_bit(ptr.cast(), self.len() as _) } as usize;
            (i < self.len()).then_some(i)
        }

        /// Set bit `index` (nothing if it is beyond `len()`).
        pub(crate) fn set_bit(&mut self, index: usize) {
            self.assign(index, true);
        }

        /// Clear bit `index` (nothing if it is beyond `len()`).
        pub(crate) fn clear_bit(&mut self, index: usize) {
            self.assign(index, false);
        }

        fn assign(&mut self, index: usize, value: bool) {
            if index >= self.len() {
                return;
            }
            let ptr = core::ptr::from_mut(self).cast::<usize>();
            // SAFETY: `index` is within the `len()` bits of words we may
            // write (type invariant, `&mut self`).
            unsafe { bindings::vgpio_assign_bit(index as _, ptr.cast(), value) };
        }
    }
}
