// SPDX-License-Identifier: GPL-2.0

//! Virtio drivers, devices and virtqueues.
//!
//! Shaped like the Rust virtio abstraction proposed upstream (2026): a
//! `#[vtable]` [`Driver`] trait whose probe builds the driver's state as a
//! pin-initialiser, a bus adapter that attaches it to the device, marks the
//! device ready and calls [`Driver::init`], device contexts ([`Core`] in
//! probe and remove, `Bound` while bound: 7.x's own), [`module_virtio_driver!`], and
//! virtqueues the adapter deletes after remove (or a failed probe), having
//! revoked every handle first, so no queue can be used after `del_vqs`.
//! Differences, each because of this driver: typed queues whose
//! buffers are owned `KBox<M>` messages ([`Buffer`]); [`Device::stop`], which
//! breaks the queues and waits for running callbacks before the reset (a
//! virtio-mmio reset does not wait for them); probe returns its initialiser
//! inside a `Result` (what fails before anything is built fails there).
//!
//! C headers: `include/linux/virtio.h`, `include/linux/virtio_config.h`.

#[cfg(vgpio_k612)]
use core::fmt;
use core::marker::PhantomData;
#[cfg(vgpio_k612)]
use core::ops::Deref;
use core::ptr::NonNull;
#[cfg(vgpio_k612)]
use kernel::types::ForeignOwnable;

use kernel::error::{from_result, to_result};
use kernel::prelude::*;
use kernel::sync::{Arc, UniqueArc};
use kernel::types::Opaque;

// (re-exported: the driver names `virtio::ARef`, which 7.x's crate moved)
#[cfg(vgpio_k7)]
pub(crate) use kernel::sync::aref::ARef;
#[cfg(vgpio_k7)]
use kernel::sync::aref::AlwaysRefCounted;
#[cfg(vgpio_k612)]
pub(crate) use kernel::types::ARef;
#[cfg(vgpio_k612)]
use kernel::types::AlwaysRefCounted;

use super::bindings;
#[cfg(vgpio_k612)]
use super::cstr::cstr;
use super::revocable::Revocable;
use super::sync::rcu;

/// A virtio driver: what the bus calls when a matching device comes and goes.
///
/// [`Driver::probe`] builds the driver's state (config read, queues found,
/// nothing sent: the device is not ready yet). The bus adapter attaches it
/// to the device, from when on [`Driver::vq_callback`] can run, marks the
/// device ready and calls [`Driver::init`], which may talk to the device. If
/// `init` fails, or when the device goes, [`Driver::remove`] runs with the
/// state still attached; then the adapter stops the device, deletes its
/// virtqueues (their handles revoked first) and drops the state.
#[vtable]
pub(crate) trait Driver: Send + Sync + Sized + 'static {
    /// The driver's name on the virtio bus (`/sys/bus/virtio/drivers/NAME`).
    const NAME: &'static CStr;
    /// The devices it binds ([`virtio_device_table!`], which also makes
    /// the module's alias, so that udev loads it for them).
    const ID_TABLE: IdTable;
    /// The feature bits it can use.
    const FEATURES: &'static [u32];

    /// Build the state for a new device; its virtqueues, if it has any,
    /// are found with `vqs` (once: [`Device::find_vqs`] consumes it).
    fn probe(dev: &Device<Core<'_>>, vqs: FindVqs<'_, Self>) -> Result<impl PinInit<Self, Error>>;

    /// Bring the device up (it is ready: the driver may talk to it).
    fn init(&self, dev: &Device<Core<'_>>) -> Result;

    /// The device is going away (unbind, module unload, hot unplug), or
    /// `init` failed: take back what was given to the device.
    fn remove(&self, dev: &Device<Core<'_>>);

    /// Virtqueue `index` has used buffers (interrupt context).
    fn vq_callback(&self, index: usize);
}

/// Device contexts: 7.x's kernel crate has them (`kernel::device`): [`Core`]
/// in a bus callback such as probe and remove (the device lock is held, so
/// the driver's binding cannot change meanwhile), `Bound` while bound to
/// a driver, [`Normal`] with no guarantee beyond the device's memory being
/// valid.
#[cfg(vgpio_k7)]
pub(crate) use kernel::device::{Core, DeviceContext, Normal};

/// 6.12's kernel crate has no device contexts: the same ones, as markers
/// (see the 7.x crate's `kernel::device` for what each means).
#[cfg(vgpio_k612)]
mod context {
    use core::marker::PhantomData;

    /// A device in a bus callback (probe, remove); `'a` brands the
    /// callback's scope, as the 7.x crate's `Core<'a>` does.
    pub(crate) struct Core<'a>(PhantomData<fn(&'a ()) -> &'a ()>);
    /// A device bound to a driver.
    pub(crate) struct Bound;
    /// No guarantee beyond the device's memory being valid.
    pub(crate) struct Normal;

    mod private {
        pub(crate) trait Sealed {}
    }
    impl private::Sealed for Core<'_> {}
    impl private::Sealed for Bound {}
    impl private::Sealed for Normal {}

    /// The contexts above, and only those (sealed).
    pub(crate) trait DeviceContext: private::Sealed {}
    impl DeviceContext for Core<'_> {}
    impl DeviceContext for Bound {}
    impl DeviceContext for Normal {}
}
#[cfg(vgpio_k612)]
use context::Bound;
#[cfg(vgpio_k612)]
pub(crate) use context::{Core, DeviceContext, Normal};

/// A `struct virtio_device`, in a context `Ctx`.
///
/// # Invariants
///
/// The wrapped device is valid for the lifetime of any reference to this
/// type; in context [`Core`] the caller holds its device lock and the
/// device is bound to a driver whose bus callbacks are an [`Adapter`]'s,
/// or being probed by it (`'a` brands the bus callback's scope); in context
/// `Bound` it is bound to such a driver, or being probed by it; the
/// 7.x crate's internal contexts (`CoreInternal`, `BoundInternal`) are never
/// made for this type.
#[repr(transparent)]
pub(crate) struct Device<Ctx: DeviceContext = Normal>(
    Opaque<bindings::virtio_device>,
    PhantomData<Ctx>,
);

// SAFETY: a virtio device may be used from any thread; the C functions called
// through `Device` do their own locking.
unsafe impl Send for Device {}
// SAFETY: see `Send`; every method takes `&self` and the C side serializes.
unsafe impl Sync for Device {}

// SAFETY: `Device` is a transparent wrapper of `virtio_device`, whatever its
// context (a zero-sized marker).
#[cfg(vgpio_k7)]
kernel::impl_device_context_deref!(unsafe { Device });

// A counted reference to the device from any context (`vdev.into()`), for
// state that outlives a call.
#[cfg(vgpio_k7)]
kernel::impl_device_context_into_aref!(Device);

#[cfg(vgpio_k612)]
impl<'a> From<&Device<Core<'a>>> for ARef<Device> {
    fn from(dev: &Device<Core<'a>>) -> Self {
        (&**dev).into()
    }
}

#[cfg(vgpio_k612)]
impl From<&Device<Bound>> for ARef<Device> {
    fn from(dev: &Device<Bound>) -> Self {
        (&**dev).into()
    }
}

#[cfg(vgpio_k612)]
impl<'a> Deref for Device<Core<'a>> {
    type Target = Device<Bound>;

    fn deref(&self) -> &Device<Bound> {
        // SAFETY: same layout (`repr(transparent)`, the context is a
        // zero-sized marker); a device in probe or remove is bound (or
        // binding) to our driver.
        unsafe { &*core::ptr::from_ref(self).cast::<Device<Bound>>() }
    }
}

#[cfg(vgpio_k612)]
impl Deref for Device<Bound> {
    type Target = Device;

    fn deref(&self) -> &Device {
        // SAFETY: same layout; `Normal` asks for nothing more.
        unsafe { &*core::ptr::from_ref(self).cast::<Device>() }
    }
}

// SAFETY: get_device/put_device keep the embedded `struct device`, and with
// it the virtio device, alive while the count is not zero.
unsafe impl AlwaysRefCounted for Device {
    fn inc_ref(&self) {
        // SAFETY: the device is valid (type invariant).
        unsafe { bindings::get_device(self.dev()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller owns a count on the valid device.
        unsafe { bindings::put_device(obj.as_ref().dev()) };
    }
}

/// printk levels, as `KERN_*` strings.
#[cfg(vgpio_k612)]
pub(crate) mod level {
    use super::cstr;
    use kernel::str::CStr;

    pub(crate) const ERR: &CStr = cstr!(c"\x013");
    pub(crate) const WARNING: &CStr = cstr!(c"\x014");
    pub(crate) const DEBUG: &CStr = cstr!(c"\x017");
}

impl<Ctx: DeviceContext> Device<Ctx> {
    /// # Safety
    ///
    /// `ptr` must point to a valid virtio device that stays valid for `'a`
    /// and is in context `Ctx` for `'a` (see the type invariants).
    unsafe fn from_raw<'a>(ptr: *mut bindings::virtio_device) -> &'a Self {
        // SAFETY: `Device` is a transparent wrapper of `virtio_device`, and
        // the caller guarantees `ptr` is valid for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn as_raw(&self) -> *mut bindings::virtio_device {
        self.0.get()
    }

    /// The embedded `struct device`.
    pub(crate) fn dev(&self) -> *mut bindings::device {
        // SAFETY: by the type invariant the virtio device is valid; taking
        // the address of a field does not read it.
        unsafe { core::ptr::addr_of_mut!((*self.as_raw()).dev) }
    }

    /// The device's name, e.g. `virtio3` (7.x: the driver core device's).
    #[cfg(vgpio_k7)]
    pub(crate) fn name(&self) -> &CStr {
        AsRef::<kernel::device::Device>::as_ref(self).name()
    }

    /// The device's name, e.g. `virtio3`.
    #[cfg(vgpio_k612)]
    pub(crate) fn name(&self) -> &CStr {
        // SAFETY: the device is valid (type invariant) and registered, so
        // dev_name() returns its NUL-terminated name, which lives as long as
        // the device.
        unsafe { CStr::from_char_ptr(bindings::vgpio_dev_name(self.dev())) }
    }

    /// Print a message prefixed with the driver and device name, like the C
    /// `dev_err()` family (7.x has the kernel crate's `dev_err!` family).
    #[cfg(vgpio_k612)]
    pub(crate) fn log(&self, level: &CStr, args: fmt::Arguments<'_>) {
        // SAFETY: the device is valid (type invariant); "%pA" takes a pointer
        // to `fmt::Arguments`, which lives on our stack for the whole call.
        unsafe {
            bindings::_dev_printk(
                level.as_char_ptr(),
                self.dev(),
                cstr!(c"%pA").as_char_ptr(),
                core::ptr::from_ref(&args).cast::<core::ffi::c_void>(),
            )
        };
    }

    /// Read a 16-bit field of the config space with one 16-bit access.
    pub(crate) fn cread16(&self, offset: u32) -> u16 {
        // SAFETY: the device is valid (type invariant); the transport checks
        // the offset against the config space size.
        unsafe { bindings::vgpio_cread16(self.as_raw(), offset) }
    }

    /// Read a 32-bit field of the config space with one 32-bit access.
    pub(crate) fn cread32(&self, offset: u32) -> u32 {
        // SAFETY: as for `cread16`.
        unsafe { bindings::vgpio_cread32(self.as_raw(), offset) }
    }

    /// Was the feature bit negotiated?
    pub(crate) fn has_feature(&self, bit: u32) -> bool {
        // SAFETY: the device is valid (type invariant).
        unsafe { bindings::vgpio_has_feature(self.as_raw(), bit) }
    }

    /// The largest buffer the transport can map for the device in one
    /// piece (smaller than usual under swiotlb).
    pub(crate) fn max_dma_size(&self) -> usize {
        // SAFETY: the device is valid (type invariant).
        unsafe { bindings::virtio_max_dma_size(self.as_raw()) }
    }

    /// Reset the device: it stops using every buffer the driver gave it.
    fn reset(&self) {
        // SAFETY: the device is valid (type invariant).
        unsafe { bindings::virtio_reset_device(self.as_raw()) }
    }
}

/// The right to find a device's virtqueues, once, for driver `T`: the
/// adapter hands one to [`Driver::probe`]. (Finding them twice would delete
/// the first ones when the transport refuses the second call, and a queue
/// found for another driver type would call back into the wrong state.)
///
/// # Invariants
///
/// `vdev` is the device being probed by `T`'s adapter; nobody has found
/// its queues since this was made.
pub(crate) struct FindVqs<'a, T: Driver> {
    /// (only compared with the device `find_vqs` is called on)
    vdev: &'a Device,
    /// Where the adapter keeps the queues' set, to delete them itself.
    set: &'a mut Option<Arc<VqSet>>,
    _p: PhantomData<T>,
}

impl Device<Core<'_>> {
    /// Find the driver's virtqueues: the first always, the second if
    /// `second` (the callbacks go to [`Driver::vq_callback`] with index 0
    /// or 1). A queue marked `direct` puts each buffer's descriptors in the
    /// ring itself, never in an indirect table (which costs an allocation
    /// and a free per buffer, but lets a buffer take one ring entry).
    pub(crate) fn find_vqs<T: Driver, M0: Buffer, M1: Buffer>(
        &self,
        token: FindVqs<'_, T>,
        names: [&'static CStr; 2],
        direct: [bool; 2],
        second: bool,
    ) -> Result<(Virtqueue<M0>, Option<Virtqueue<M1>>)> {
        if !core::ptr::eq(token.vdev.as_raw(), self.as_raw()) {
            return Err(EINVAL);
        }
        // Room for the set first, so that nothing can fail between finding
        // the queues and the set that deletes them.
        let set = UniqueArc::<VqSet>::new_uninit(GFP_KERNEL)?;
        let n = if second { 2 } else { 1 };
        let mut vqs = [core::ptr::null_mut::<bindings::virtqueue>(); 2];
        let mut cbs: [bindings::vq_callback_t; 2] =
            [Some(vq_callback::<T, 0>), Some(vq_callback::<T, 1>)];
        let cnames = [names[0].as_char_ptr(), names[1].as_char_ptr()];
        // SAFETY: the device is valid and being probed by `T`'s adapter, and
        // its queues were not found yet (the token's invariant, and the
        // token is used up here); the arrays hold `n` entries; the names are
        // 'static.
        to_result(unsafe {
            bindings::vgpio_find_vqs(
                self.as_raw(),
                n,
                vqs.as_mut_ptr(),
                cbs.as_mut_ptr(),
                cnames.as_ptr(),
                direct.as_ptr(),
            )
        })?;
        // INVARIANT: the queues exist; the set deletes them when it is
        // revoked (the adapter, which has the set, does it) or dropped.
        let queues = Queues { vdev: self.into() };
        let Ok(set) = set.pin_init_with(pin_init!(VqSet {
            queues <- Revocable::new(queues),
        }));
        let set: Arc<VqSet> = set.into();
        *token.set = Some(set.clone());
        let first = Virtqueue::new(vqs[0], &set)?;
        let second = if second {
            Some(Virtqueue::new(vqs[1], &set)?)
        } else {
            None
        };
        Ok((first, second))
    }

    /// Stop the device for good, for taking back the buffers it held: mark
    /// every virtqueue broken (their interrupts no longer call back,
    /// `get_buf` returns nothing), wait for callbacks already running to
    /// return (unlike a reset, this waits on every transport: virtio-mmio's
    /// reset does not), then reset it (it stops using every buffer).
    pub(crate) fn stop(&self) -> Stopped<'_> {
        // SAFETY: the device is valid (type invariant). Breaking only sets a
        // flag on each virtqueue of the device; the synchronization waits
        // for the transport's interrupt handlers (it may sleep: this is
        // remove's context).
        unsafe {
            bindings::virtio_break_device(self.as_raw());
            bindings::vgpio_synchronize_cbs(self.as_raw());
        }
        self.reset();
        // INVARIANT: reset just now; only the adapter makes a device ready,
        // in probe, before `Driver::init`.
        Stopped { vdev: self }
    }
}

/// Proof that a device was stopped and reset ([`Device::stop`]): it uses
/// none of the buffers it was given any more.
///
/// # Invariants
///
/// `vdev` was reset and has not been made ready since.
pub(crate) struct Stopped<'a> {
    vdev: &'a Device,
}

/// The virtqueues of one device, as their handles ([`Virtqueue`],
/// [`Notifier`]) and the adapter share them. The adapter deletes them, once
/// the driver is done with the device (after remove, or a failed probe),
/// whatever handles are left: it revokes them (the kernel crate's
/// [`Revocable`]: every use of a handle is an RCU read-side section that
/// finds them available; revocation makes them unavailable and waits for a
/// grace period before it drops the [`Queues`], so no use is still running
/// when they are deleted), and a handle then does nothing.
#[pin_data]
struct VqSet {
    #[pin]
    queues: Revocable<Queues>,
}

/// The queues find_vqs made for a device: dropping this resets the device
/// and deletes them.
///
/// # Invariants
///
/// The device's queues made by find_vqs exist, and nothing else deletes
/// them; a `Queues` is only made inside a [`VqSet`], so it is dropped only
/// when that is revoked (after every use that found it available has
/// ended) or dropped (when no handle is left). The adapter revokes every
/// set it made before it lets go of it, in its bus callbacks (task
/// context, where deleting the queues may sleep), so the second way is
/// not taken; were it taken, it would be where the last handle goes.
struct Queues {
    vdev: ARef<Device>,
}

impl Drop for Queues {
    fn drop(&mut self) {
        self.vdev.reset();
        // SAFETY: the device is valid (the count); its queues exist and
        // nothing uses them any more (type invariant); after the reset the
        // device uses none of their buffers.
        unsafe { bindings::vgpio_del_vqs(self.vdev.as_raw()) };
    }
}

impl VqSet {
    /// An RCU read-side section in which the queues were found to exist:
    /// they go on existing as long as the guard lives. `None` once they are
    /// gone. (By hand rather than with `try_access_with`: that one is not
    /// inlined, and its callers' loops then do not fold.)
    #[inline(always)]
    fn live_section(&self) -> Option<rcu::Guard> {
        let rcu = rcu::read_lock();
        self.queues.try_access_with_guard(&rcu)?;
        Some(rcu)
    }

    /// Run `f` if the queues still exist, in an RCU read-side section
    /// (during which they go on existing).
    #[inline(always)]
    fn with_live<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        let _rcu = self.live_section()?;
        Some(f())
    }

    /// Are these (still existing) queues `vdev`'s?
    fn of_device(&self, vdev: &Device) -> bool {
        self.queues
            .try_access_with(|q| core::ptr::eq(q.vdev.as_raw(), vdev.as_raw()))
            .unwrap_or(false)
    }

    /// Stop the handles, wait for uses in progress, reset the device and
    /// delete the queues (once; later calls do nothing). Sleeps.
    fn revoke_and_delete(&self) {
        self.queues.revoke();
    }
}

/// Log through a virtio [`Device`] at a given level (ERR, WARNING, DEBUG):
/// `dev_log!(vdev, ERR, "...")`, prefixed with the driver and device name.
#[cfg(vgpio_k612)]
macro_rules! dev_log {
    ($vdev:expr, $lvl:ident, $($arg:tt)*) => {
        $vdev.log($crate::virtio::level::$lvl, core::format_args!($($arg)*))
    };
}
/// Log through a virtio [`Device`] at a given level (ERR, WARNING, DEBUG):
/// `dev_log!(vdev, ERR, "...")`: the kernel crate's `dev_err!` family.
#[cfg(vgpio_k7)]
macro_rules! dev_log {
    ($vdev:expr, ERR, $($arg:tt)*) => { kernel::dev_err!($vdev, $($arg)*) };
    ($vdev:expr, WARNING, $($arg:tt)*) => { kernel::dev_warn!($vdev, $($arg)*) };
    ($vdev:expr, DEBUG, $($arg:tt)*) => { kernel::dev_dbg!($vdev, $($arg)*) };
}
pub(crate) use dev_log;

/// May one more line about a misbehaving device be logged? At most 10 per
/// 5 s for all devices together (the kernel crate has no rate-limited
/// printing; the kernel counts and reports what this suppressed).
pub(crate) fn log_ratelimit() -> bool {
    // SAFETY: the helper only touches its own static ratelimit state.
    unsafe { bindings::vgpio_log_ratelimit() }
}

/// `dev_log!` for a device's misbehaviour: rate-limited.
macro_rules! dev_log_bad {
    ($vdev:expr, $lvl:ident, $($arg:tt)*) => {
        if $crate::virtio::log_ratelimit() {
            $crate::virtio::dev_log!($vdev, $lvl, $($arg)*)
        }
    };
}
pub(crate) use dev_log_bad;

#[cfg(vgpio_k7)]
impl<Ctx: DeviceContext> AsRef<kernel::device::Device> for Device<Ctx> {
    fn as_ref(&self) -> &kernel::device::Device {
        // SAFETY: the embedded `struct device` is valid for as long as the
        // virtio device (type invariant), so for the borrow of `self`; the
        // two crates' bindings of `struct device` are the same C type.
        unsafe { kernel::device::Device::from_raw(self.dev().cast()) }
    }
}

/// A virtio device ID (`struct virtio_device_id`): a device type, any
/// vendor.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct DeviceId(bindings::virtio_device_id);

impl DeviceId {
    /// The devices of virtio device type `device`, from any vendor. (0
    /// ends a table: not a device type; refused at compile time in a
    /// table.)
    pub(crate) const fn new(device: u32) -> Self {
        assert!(device != 0, "virtio device type 0 ends an ID table");
        DeviceId(bindings::virtio_device_id {
            device,
            vendor: bindings::VIRTIO_DEV_ANY_ID,
        })
    }
}

// SAFETY: `DeviceId` is a `repr(transparent)` wrapper of `virtio_device_id`
// and adds no invariant, so its bits are a valid `RawType`.
#[cfg(vgpio_k7)]
unsafe impl kernel::device_id::RawDeviceId for DeviceId {
    type RawType = bindings::virtio_device_id;
}

/// A driver's table of virtio device IDs ([`virtio_device_table!`]).
#[cfg(vgpio_k7)]
pub(crate) type IdTable = &'static dyn kernel::device_id::IdTable<DeviceId, ()>;

/// A driver's table of virtio device IDs ([`virtio_device_table!`]).
#[cfg(vgpio_k612)]
pub(crate) type IdTable = &'static dyn k612::RawIdTable;

/// 6.12's kernel crate has no device ID tables: a table of the same layout
/// as 7.x's `IdArray` (the IDs, then a zeroed entry that ends it), which
/// the driver core reads through `virtio_driver::id_table`.
#[cfg(vgpio_k612)]
pub(crate) mod k612 {
    use super::{bindings, DeviceId};

    /// A table the driver core can read: a pointer to its first entry.
    ///
    /// # Safety
    ///
    /// `as_ptr` returns a pointer to entries valid for as long as `self`,
    /// ended by a zeroed entry, readable through that pointer.
    pub(crate) unsafe trait RawIdTable: Sync {
        fn as_ptr(&self) -> *const bindings::virtio_device_id;
    }

    /// `N` IDs and the zeroed entry that ends them.
    #[repr(C)]
    pub(crate) struct IdArray<const N: usize> {
        ids: [DeviceId; N],
        sentinel: bindings::virtio_device_id,
    }

    impl<const N: usize> IdArray<N> {
        pub(crate) const fn new(ids: [DeviceId; N]) -> Self {
            IdArray {
                ids,
                sentinel: bindings::virtio_device_id {
                    device: 0,
                    vendor: 0,
                },
            }
        }
    }

    // SAFETY: `repr(C)`: the IDs (`DeviceId` is a transparent
    // `virtio_device_id`), then the zeroed sentinel, contiguous; the pointer
    // is derived from the whole structure, so it may read the sentinel too.
    unsafe impl<const N: usize> RawIdTable for IdArray<N> {
        fn as_ptr(&self) -> *const bindings::virtio_device_id {
            core::ptr::from_ref(self).cast()
        }
    }
}

/// Define the driver's virtio device ID table `$name`, under the symbol
/// name modpost reads (`file2alias`): the module gets a `virtio:d...v*`
/// alias per entry, and udev loads it for such a device.
macro_rules! virtio_device_table {
    ($name:ident, [$($id:expr),+ $(,)?]) => {
        #[cfg(vgpio_k7)]
        kernel::module_device_table!("virtio", $crate::virtio::DeviceId, $name, @none, [$($id),+]);
        // (6.12's modpost reads __mod_<bus>__<name>_device_table)
        #[cfg(vgpio_k612)]
        #[export_name = concat!("__mod_virtio__", stringify!($name), "_device_table")]
        static $name: $crate::virtio::k612::IdArray<{ [$($id),+].len() }> =
            $crate::virtio::k612::IdArray::new([$($id),+]);
    };
}
pub(crate) use virtio_device_table;

/// Declare a module whose one job is a virtio driver `T`: on 7.x the kernel
/// crate's `module_driver!` with its `driver::Registration` of the
/// [`Adapter`]; on 6.12 (whose crate has neither) `module!` with this
/// wrapper's `Registration`.
macro_rules! module_virtio_driver {
    // (`tt`, not `literal`: module! wants the literal tokens themselves)
    (type: $type:ty, name: $name:tt, authors: [$author:tt],
     description: $desc:tt, license: $license:tt $(,)?) => {
        #[cfg(vgpio_k612)]
        struct VirtioModule {
            _reg: $crate::virtio::Registration<$type>,
        }

        #[cfg(vgpio_k612)]
        impl kernel::Module for VirtioModule {
            fn init(module: &'static kernel::ThisModule) -> kernel::error::Result<Self> {
                Ok(VirtioModule {
                    _reg: $crate::virtio::Registration::new(module)?,
                })
            }
        }

        // 6.12's module! takes one `author`, 7.x's a list of `authors`.
        #[cfg(vgpio_k612)]
        kernel::prelude::module! {
            type: VirtioModule,
            name: $name,
            author: $author,
            description: $desc,
            license: $license,
        }
        #[cfg(vgpio_k7)]
        kernel::module_driver!(<T>, $crate::virtio::Adapter<T>, {
            type: $type,
            name: $name,
            authors: [$author],
            description: $desc,
            license: $license,
        });

        // The module pointer for the driver's own registrations (6.12's
        // module! makes this static; 7.x's keeps it in a const).
        #[cfg(vgpio_k7)]
        static THIS_MODULE: kernel::ThisModule =
            <LocalModule as kernel::ModuleMetadata>::THIS_MODULE;
    };
}
pub(crate) use module_virtio_driver;

/// The bus adapter of driver `T`: what the virtio bus calls, and (on 7.x)
/// how the kernel crate's `driver::Registration` registers it.
pub(crate) struct Adapter<T: Driver>(PhantomData<T>);

impl<T: Driver> Adapter<T> {
    /// Fill in the C driver structure for `T` and register it with the
    /// virtio bus for `module`. (The driver's own NAME is its name on the
    /// bus, on every kernel.)
    ///
    /// # Safety
    ///
    /// `drv` points to a `virtio_driver` that nothing else uses yet; on
    /// success it stays in place and valid until [`Adapter::unregister_raw`].
    unsafe fn register_raw(
        drv: *mut bindings::virtio_driver,
        module: &'static ThisModule,
    ) -> Result {
        // SAFETY: `drv` is ours to write (caller). The name, the ID table
        // and the feature table are 'static.
        unsafe {
            (*drv).driver.name = T::NAME.as_char_ptr();
            (*drv).id_table = T::ID_TABLE.as_ptr();
            (*drv).feature_table = T::FEATURES.as_ptr();
            (*drv).feature_table_size = T::FEATURES.len() as u32;
            (*drv).probe = Some(probe_callback::<T>);
            (*drv).remove = Some(remove_callback::<T>);
        }
        // SAFETY: filled in above; it stays in place and valid until it is
        // unregistered (caller).
        to_result(unsafe { bindings::__register_virtio_driver(drv, module.as_ptr().cast()) })
    }

    /// Unregister `drv`: this unbinds every device, calling
    /// `remove_callback` for each, before returning.
    ///
    /// # Safety
    ///
    /// `drv` was registered by [`Adapter::register_raw`] and not unregistered
    /// since.
    unsafe fn unregister_raw(drv: *mut bindings::virtio_driver) {
        // SAFETY: a registered driver (caller).
        unsafe { bindings::unregister_virtio_driver(drv) };
    }
}

// SAFETY: `virtio_driver` is a C structure (bindgen's `repr(C)`, `Default`
// all zeroes) embedding its `struct device_driver` at the offset given; the
// data the adapter stores with the driver core's drvdata is a
// `Pin<KBox<Attached<T>>>` (`probe_callback`).
#[cfg(vgpio_k7)]
unsafe impl<T: Driver> kernel::driver::DriverLayout for Adapter<T> {
    type DriverType = bindings::virtio_driver;
    type DriverData<'bound> = Attached<T>;
    const DEVICE_DRIVER_OFFSET: usize = core::mem::offset_of!(bindings::virtio_driver, driver);
}

// SAFETY: `unregister` only undoes a successful `register` of the same
// structure (`driver::Registration` calls it only then).
#[cfg(vgpio_k7)]
unsafe impl<T: Driver> kernel::driver::RegistrationOps for Adapter<T> {
    unsafe fn register(
        reg: &Opaque<bindings::virtio_driver>,
        _module_name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result {
        // SAFETY: the registration is being made: nothing else uses the
        // structure yet; it stays pinned and valid until `unregister` (this
        // function's safety requirement).
        unsafe { Self::register_raw(reg.get(), module) }
    }

    unsafe fn unregister(reg: &Opaque<bindings::virtio_driver>) {
        // SAFETY: registered by `register` (caller).
        unsafe { Self::unregister_raw(reg.get()) };
    }
}

/// A registered virtio driver; unregistered when dropped (6.12; 7.x uses
/// the kernel crate's `driver::Registration`).
///
/// # Invariants
///
/// `drv` was registered with `__register_virtio_driver` and is not moved or
/// freed until `unregister_virtio_driver` returns in `drop`.
#[cfg(vgpio_k612)]
pub(crate) struct Registration<T: Driver> {
    drv: KBox<Opaque<bindings::virtio_driver>>,
    _p: PhantomData<T>,
}

// SAFETY: the registration is only touched at module init and exit.
#[cfg(vgpio_k612)]
unsafe impl<T: Driver> Send for Registration<T> {}
// SAFETY: no `&self` method exists.
#[cfg(vgpio_k612)]
unsafe impl<T: Driver> Sync for Registration<T> {}

#[cfg(vgpio_k612)]
impl<T: Driver> Registration<T> {
    /// Register `T` with the virtio bus for `module`.
    pub(crate) fn new(module: &'static ThisModule) -> Result<Self> {
        let drv = KBox::new(Opaque::new(bindings::virtio_driver::default()), GFP_KERNEL)?;
        // SAFETY: we own the structure, which nothing knows yet; it will
        // neither move nor be freed before `drop` unregisters it (type
        // invariant).
        unsafe { Adapter::<T>::register_raw(drv.get(), module) }?;
        Ok(Registration {
            drv,
            _p: PhantomData,
        })
    }
}

#[cfg(vgpio_k612)]
impl<T: Driver> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `new` (type invariant).
        unsafe { Adapter::<T>::unregister_raw(self.drv.get()) };
    }
}

/// What the adapter attaches to a bound device: the driver's state, and the
/// device's virtqueues, which the adapter deletes. Kept in the device's
/// `priv` on 6.12 and dropped by [`Attached::detach`]; on 7.x in the driver
/// core's drvdata (`Device<CoreInternal>::set_drvdata`), where the kernel
/// crate's `driver::Registration` drops it once remove (or a failed probe)
/// is over.
#[pin_data]
pub(crate) struct Attached<T: Driver> {
    data: Pin<KBox<T>>,
    set: Option<Arc<VqSet>>,
}

impl<T: Driver> Attached<T> {
    /// Build the state with `init` and attach it to `vdev`: from now on
    /// virtqueue callbacks find it.
    ///
    /// # Safety
    ///
    /// `vdev` is being probed by `T`'s adapter, its device lock held, and
    /// has nothing attached; the returned reference is not used after
    /// [`Attached::detach`].
    unsafe fn attach<'a>(
        vdev: &'a Device<Core<'_>>,
        init: impl PinInit<Self, Error>,
    ) -> Result<Pin<&'a Self>> {
        #[cfg(vgpio_k612)]
        {
            let ptr = KBox::pin_init(init, GFP_KERNEL)?.into_foreign();
            // SAFETY: `vdev` is valid; `priv` belongs to the driver being
            // bound (caller).
            unsafe { (*vdev.as_raw()).priv_ = ptr.cast_mut() };
            // SAFETY: `ptr` came from `into_foreign` just above; it is
            // reclaimed only in `detach`, after the last use (caller).
            Ok(unsafe { <Pin<KBox<Self>> as ForeignOwnable>::borrow(ptr) })
        }
        #[cfg(vgpio_k7)]
        {
            use kernel::device::{CoreInternal, Device as KDevice};
            // SAFETY: the device is valid and being probed by this bus
            // adapter (caller): the context of its bus callbacks.
            let dev = unsafe { KDevice::<CoreInternal<'_>>::from_raw(vdev.dev().cast()) };
            dev.set_drvdata(init)?;
            // SAFETY: set just above, as a `Pin<KBox<Attached<T>>>`; the
            // driver core drops it only after remove, or after this probe
            // failed (`Adapter`'s `DriverLayout`).
            Ok(unsafe { dev.drvdata_borrow::<Self>() })
        }
    }

    /// The state attached to `vdev`, if any.
    ///
    /// # Safety
    ///
    /// `vdev` is valid, its driver is `T`'s adapter, and the reference is
    /// used only while the state stays attached: in a virtqueue callback
    /// (the adapter stops them before detaching), or in remove.
    unsafe fn find<'a>(vdev: *mut bindings::virtio_device) -> Option<Pin<&'a Self>> {
        #[cfg(vgpio_k612)]
        {
            // SAFETY: `vdev` is valid (caller); `priv` is read once.
            let ptr = unsafe { (*vdev).priv_ };
            // SAFETY: a non-null `priv` is the attached state (`attach`),
            // which stays attached while the reference is used (caller).
            (!ptr.is_null()).then(|| unsafe { <Pin<KBox<Self>> as ForeignOwnable>::borrow(ptr) })
        }
        #[cfg(vgpio_k7)]
        {
            use kernel::device::{BoundInternal, Device as KDevice};
            // SAFETY: `vdev` is valid (caller); taking a field's address
            // reads nothing.
            let dev =
                unsafe { core::ptr::addr_of_mut!((*vdev).dev) }.cast::<kernel::bindings::device>();
            // SAFETY: `dev` is valid (caller). (Null until `attach`: a
            // device may interrupt before it is ready.)
            if unsafe { kernel::bindings::dev_get_drvdata(dev) }.is_null() {
                return None;
            }
            // SAFETY: the device is valid and bound to this adapter
            // (caller), and its drvdata is the attached state (`attach`).
            // (A plain load, as the crate's own: a device that interrupts
            // before it is ready, with notifications not hardened, could
            // race with `attach`'s plain store; a ready device's callbacks
            // come after the status write that follows it.)
            Some(unsafe { KDevice::<BoundInternal>::from_raw(dev).drvdata_borrow::<Self>() })
        }
    }

    /// Detach the state from `vdev` and drop it (6.12); on 7.x the driver
    /// core does that once remove (or the failed probe) returns.
    ///
    /// # Safety
    ///
    /// The state is attached to `vdev`, whose device lock is held, and no
    /// callback runs any more (the device was stopped); nothing uses a
    /// reference from `attach` or `find` after this.
    unsafe fn detach(vdev: &Device<Core<'_>>) {
        #[cfg(vgpio_k612)]
        // SAFETY: `priv` holds the state from `attach` (caller); it is
        // cleared before the state is dropped, and nothing reads it now.
        unsafe {
            let ptr = (*vdev.as_raw()).priv_;
            (*vdev.as_raw()).priv_ = core::ptr::null_mut();
            drop(<Pin<KBox<Self>> as ForeignOwnable>::from_foreign(ptr));
        }
        #[cfg(vgpio_k7)]
        let _ = vdev;
    }

    fn data(self: Pin<&Self>) -> &T {
        self.get_ref().data.as_ref().get_ref()
    }
}

/// # Safety
///
/// Called by the virtio bus only, with a device of the driver `T`'s adapter
/// registered, its device lock held.
unsafe extern "C" fn probe_callback<T: Driver>(
    vdev: *mut bindings::virtio_device,
) -> core::ffi::c_int {
    from_result(|| {
        // SAFETY: the bus calls probe with a valid device, its lock held,
        // that stays valid at least until remove.
        let dev = unsafe { Device::<Core<'_>>::from_raw(vdev) };
        // A driver bound before may have left its state's address there
        // (the C gpio-virtio driver does): no callback may take it for ours
        // (6.12 keeps the state there; 7.x in the driver core's drvdata,
        // which the driver core clears after every unbind).
        // SAFETY: `vdev` is valid; `priv` belongs to the driver being bound.
        unsafe { (*vdev).priv_ = core::ptr::null_mut() };
        let mut set = None;
        // INVARIANT: the device `T` probes; nobody found its queues yet.
        let vqs = FindVqs {
            vdev: dev,
            set: &mut set,
            _p: PhantomData,
        };
        let attached = T::probe(dev, vqs)
            .and_then(|init| KBox::pin_init(init, GFP_KERNEL))
            .and_then(|data| {
                // (a copy: if attaching fails, the set is still here to be
                // deleted below)
                let copy = set.clone();
                let init = try_pin_init!(Attached::<T> { data, set: copy }? Error);
                // SAFETY: in probe, nothing attached yet; `attached` is not
                // used after `detach`.
                unsafe { Attached::attach(dev, init) }
            });
        let attached = match attached {
            Ok(a) => a,
            Err(e) => {
                // The queues a failed probe found (the handles went with
                // the partly built state, or are dead now).
                if let Some(set) = set {
                    set.revoke_and_delete();
                }
                return Err(e);
            }
        };
        // SAFETY: the device is valid; the driver's state is attached, so
        // the device may now be used (and call back).
        unsafe { bindings::vgpio_device_ready(vdev) };
        if let Err(e) = attached.data().init(dev) {
            // A waiter killed during init may have left messages with the
            // device: remove takes them back before the queues go.
            attached.data().remove(dev);
            stop_and_delete(dev, &attached.set);
            // SAFETY: attached above, the device stopped; `attached` is not
            // used after this.
            unsafe { Attached::<T>::detach(dev) };
            return Err(e);
        }
        Ok(0)
    })
}

/// # Safety
///
/// Called by the virtio bus only, with a device `probe_callback` bound, its
/// device lock held.
unsafe extern "C" fn remove_callback<T: Driver>(vdev: *mut bindings::virtio_device) {
    // SAFETY: the bus calls remove with the device it probed successfully,
    // its lock held.
    let dev = unsafe { Device::<Core<'_>>::from_raw(vdev) };
    // SAFETY: probe attached the state; it stays attached until `detach`,
    // after the last use of `attached`.
    let Some(attached) = (unsafe { Attached::<T>::find(vdev) }) else {
        // (cannot be: remove follows a successful probe, which attached it)
        return;
    };
    attached.data().remove(dev);
    stop_and_delete(dev, &attached.set);
    // SAFETY: the bound device with the state attached, stopped; `attached`
    // is not used after this.
    unsafe { Attached::<T>::detach(dev) };
}

/// Stop the device (no callback runs once this returns, nor any later:
/// then nothing borrows the state when it is detached) and delete its
/// virtqueues, their handles revoked first.
fn stop_and_delete(dev: &Device<Core<'_>>, set: &Option<Arc<VqSet>>) {
    dev.stop();
    if let Some(set) = set {
        set.revoke_and_delete();
    }
}

/// # Safety
///
/// Called by virtio only, for a virtqueue found by `Device::find_vqs` for
/// a `T` driver's device (queue `I`).
unsafe extern "C" fn vq_callback<T: Driver, const I: usize>(vq: *mut bindings::virtqueue) {
    // SAFETY: virtio calls this with a live virtqueue of a live device,
    // bound to `T`'s adapter (its queues were found by it); the state, if
    // attached, stays so while the callback runs (the adapter stops
    // callbacks before detaching it).
    if let Some(attached) = unsafe { Attached::<T>::find((*vq).vdev) } {
        attached.data().vq_callback(I);
    }
}

/// A [`Virtqueue`]'s operations while its queues are known to exist
/// ([`Virtqueue::live`]): an RCU read-side section lasts as long as the
/// value.
///
/// # Invariants
///
/// `vq` exists while this value does (the queues' set was found live inside
/// `_rcu`'s section, after it began, and the set is deleted only after a
/// grace period that follows its revocation), and the
/// `Virtqueue` it came from is mutably borrowed for `'a` (so its operations
/// are serialized); every token in it came from `KBox::<M>::into_raw` in
/// [`LiveQueue::add`].
pub(crate) struct LiveQueue<'a, M: Buffer> {
    vq: NonNull<bindings::virtqueue>,
    _q: PhantomData<&'a mut Virtqueue<M>>,
    _rcu: rcu::Guard,
}

impl<M: Buffer> LiveQueue<'_, M> {
    /// Queue `msg`; on failure (the ring is full: `ENOSPC`) it is handed
    /// back.
    #[inline]
    pub(crate) fn add(&mut self, mut msg: KBox<M>) -> core::result::Result<(), (Error, KBox<M>)> {
        let mut out_sg = bindings::scatterlist::default();
        let mut in_sg = bindings::scatterlist::default();
        let r = msg.readable();
        // SAFETY: the slices lie in linear-map memory `msg` owns and nothing
        // else reaches (`Buffer`'s contract); it is handed to the queue
        // below and not touched again until the queue gives it back, so the
        // device has it to itself.
        unsafe { bindings::sg_init_one(&mut out_sg, r.as_ptr().cast(), r.len() as u32) };
        let w = msg.writable();
        // SAFETY: as above.
        unsafe { bindings::sg_init_one(&mut in_sg, w.as_mut_ptr().cast(), w.len() as u32) };
        let mut sgs = [
            core::ptr::from_mut(&mut out_sg),
            core::ptr::from_mut(&mut in_sg),
        ];
        let token = KBox::into_raw(msg);
        // SAFETY: the queue exists and its operations are serialized (type
        // invariant); the scatterlists are copied into the ring before the
        // call returns; GFP_ATOMIC: this runs in an RCU read-side section
        // (and the driver's callers hold a spinlock).
        let ret = unsafe {
            bindings::virtqueue_add_sgs(
                self.vq.as_ptr(),
                sgs.as_mut_ptr(),
                1,
                1,
                token.cast(),
                kernel::bindings::GFP_ATOMIC,
            )
        };
        if ret != 0 {
            // SAFETY: the queue did not take the token; it is ours again.
            return Err((Error::from_errno(ret), unsafe { KBox::from_raw(token) }));
        }
        Ok(())
    }

    /// The first half of [`LiveQueue::kick`], under the queue's lock: does
    /// the device want to be told about the buffers added? If so, tell it
    /// with [`Notifier::notify`], which can be done with the lock dropped.
    #[must_use = "the device waits for the notification this asks for"]
    #[inline]
    pub(crate) fn kick_prepare(&mut self) -> bool {
        // SAFETY: the queue exists and its operations are serialized (type
        // invariant), as virtqueue_kick_prepare requires.
        unsafe { bindings::virtqueue_kick_prepare(self.vq.as_ptr()) }
    }

    /// Tell the device about newly added buffers (a VM exit, usually: with
    /// the queue's lock held; see [`LiveQueue::kick_prepare`] for the other
    /// way).
    #[inline]
    pub(crate) fn kick(&mut self) {
        // SAFETY: the queue exists and its operations are serialized (type
        // invariant), as virtqueue_kick requires.
        unsafe { bindings::virtqueue_kick(self.vq.as_ptr()) };
    }

    /// See [`Virtqueue::get_buf`].
    #[inline]
    pub(crate) fn get_buf(&mut self) -> Option<(KBox<M>, u32)> {
        let mut len = 0u32;
        // SAFETY: the queue exists and its operations are serialized (type
        // invariant).
        let token = unsafe { bindings::virtqueue_get_buf(self.vq.as_ptr(), &mut len) };
        if token.is_null() {
            return None;
        }
        // SAFETY: every token came from `KBox::into_raw` in `add` (type
        // invariant) and virtio returns each one once.
        Some((unsafe { KBox::from_raw(token.cast::<M>()) }, len))
    }
}

/// What tells a queue's device about buffers added to it
/// ([`Virtqueue::notifier`]): kept outside the lock that serializes the
/// queue's other operations, so that the notification (a VM exit, usually)
/// is sent with that lock dropped, after [`LiveQueue::kick_prepare`] said
/// the device wants one.
///
/// # Invariants
///
/// `vq` is a virtqueue of `set`'s device, which exists while `set` is live.
pub(crate) struct Notifier {
    vq: NonNull<bindings::virtqueue>,
    set: Arc<VqSet>,
}

// SAFETY: virtqueue_notify may be called from any thread, without the lock
// that serializes the queue's other operations; the set is shared by
// counted references.
unsafe impl Send for Notifier {}
// SAFETY: as above: `notify` takes `&self` and needs no serialization.
unsafe impl Sync for Notifier {}

impl Notifier {
    /// Tell the device (no lock needed; nothing once the queues are gone).
    /// A notification the device did not ask for is harmless.
    #[inline]
    pub(crate) fn notify(&self) {
        let vq = self.vq.as_ptr();
        self.set.with_live(|| {
            // SAFETY: the queue exists while the set is live (type
            // invariant, `with_live`); virtqueue_notify needs no
            // serialization with the queue's other operations.
            unsafe { bindings::virtqueue_notify(vq) };
        });
    }
}

/// What the device reads and writes for one message: a device-readable part
/// and a device-writable part, both inside the message's own memory.
///
/// DMA on a device that is not cache-coherent (arm64: ARCH_DMA_MINALIGN 128,
/// virtio through the DMA API with VIRTIO_F_ACCESS_PLATFORM) stays correct
/// because the queue owns the whole message while it is queued: nothing
/// writes any byte of its allocation then (see [`Virtqueue`]), so no CPU
/// store shares a cache line with what the device writes. And a writable
/// part either is small (the DMA layer bounces small kmalloc buffers for
/// such a device) or is a whole allocation of its own (the names block): a
/// large writable part embedded at an offset next to other fields would
/// need aligning to the DMA line.
///
/// # Safety
///
/// Both slices lie in memory the value owns, inside its own `KBox`
/// allocation or in kmalloc'd memory it owns (the kernel's linear map, as
/// `sg_init_one` needs: not a static, not vmalloc'd or stack memory), which
/// stays where it is when the `KBox` is turned into a raw pointer and which
/// nothing else reaches: the device reads and writes it by its physical
/// address while the queue holds the message. Each call returns the same
/// memory.
pub(crate) unsafe trait Buffer {
    fn readable(&self) -> &[u8];
    fn writable(&mut self) -> &mut [u8];
}

/// A virtqueue whose buffers are `KBox<M>`s: while a message is queued, the
/// queue owns it, and it comes back out of [`Virtqueue::get_buf`] or
/// [`Virtqueue::detach_unused`]. A message cannot be reused or freed while
/// the device may still write to it. All methods take `&mut self`: keep the
/// queue behind the one lock that serializes its operations. Once the
/// adapter has deleted the device's queues (after the driver's remove), a
/// handle still held does nothing: `add` fails with `ENODEV`, the rest find
/// nothing.
///
/// # Invariants
///
/// `vq` is a virtqueue of `set`'s device, which exists while `set` is live.
/// Every token in it was produced by `KBox::<M>::into_raw` in
/// [`LiveQueue::add`].
pub(crate) struct Virtqueue<M: Buffer> {
    vq: NonNull<bindings::virtqueue>,
    set: Arc<VqSet>,
    _p: PhantomData<KBox<M>>,
}

// SAFETY: virtqueue functions may be called from any thread, serialized by
// the caller (every method takes `&mut self`); the set is shared by counted
// references.
unsafe impl<M: Buffer + Send> Send for Virtqueue<M> {}

impl<M: Buffer> Virtqueue<M> {
    /// A queue find_vqs just made for `set`'s device (its callback is
    /// already the driver's, its tokens will all come from `add`).
    fn new(vq: *mut bindings::virtqueue, set: &Arc<VqSet>) -> Result<Self> {
        // INVARIANT: a queue of the device, deleted only after the set is
        // revoked; no token yet.
        Ok(Virtqueue {
            vq: NonNull::new(vq).ok_or(ENODEV)?,
            set: set.clone(),
            _p: PhantomData,
        })
    }

    /// The queue's operations ([`LiveQueue`]) if the queues still exist,
    /// for as long as the returned value lives: one RCU read-side section
    /// for all of them (do not sleep while holding it); `None` once they
    /// are gone. Several operations in a row (a request's messages and the
    /// kick, or a callback's used buffers) cost one section instead of one
    /// each.
    #[inline]
    pub(crate) fn live(&mut self) -> Option<LiveQueue<'_, M>> {
        let rcu = self.set.live_section()?;
        // INVARIANT: the set is live, and the queue with it, for as long as
        // `rcu`'s section lasts, which is as long as the value (it owns
        // the guard); the value borrows `self` mutably.
        Some(LiveQueue {
            vq: self.vq,
            _q: PhantomData,
            _rcu: rcu,
        })
    }

    /// What notifies this queue's device without its lock (one counted
    /// reference to the queues: take it once, not per request).
    pub(crate) fn notifier(&self) -> Notifier {
        // INVARIANT: the same queue and set.
        Notifier {
            vq: self.vq,
            set: self.set.clone(),
        }
    }

    /// A message the device is done with, and the length it says it wrote.
    #[inline]
    pub(crate) fn get_buf(&mut self) -> Option<(KBox<M>, u32)> {
        self.live()?.get_buf()
    }

    /// Take back a message the stopped device will never use.
    pub(crate) fn detach_unused(&mut self, stopped: &Stopped<'_>) -> Option<KBox<M>> {
        // Only the queue's own device's reset counts.
        if !self.set.of_device(stopped.vdev) {
            return None;
        }
        let vq = self.vq.as_ptr();
        // SAFETY: the queue exists while the set is live (type invariant,
        // `with_live`); its device was reset and not made ready again
        // (`Stopped`'s invariant), as virtqueue_detach_unused_buf requires.
        let token = self
            .set
            .with_live(|| unsafe { bindings::virtqueue_detach_unused_buf(vq) })?;
        if token.is_null() {
            return None;
        }
        // SAFETY: as in `get_buf`.
        Some(unsafe { KBox::from_raw(token.cast::<M>()) })
    }

    /// Does the queue map its buffers (the DMA API: the device negotiated
    /// VIRTIO_F_ACCESS_PLATFORM, or a Xen guest; 7.x's map ops: VDUSE)?
    /// Then adding a buffer and taking it back may take the mapping layer's
    /// locks (swiotlb's, an IOMMU's, VDUSE's), none of them raw: not under
    /// a raw spinlock. Fixed for the queue's life; `true` once the queues
    /// are gone (the careful answer).
    pub(crate) fn maps_dma(&self) -> bool {
        let vq = self.vq.as_ptr();
        // SAFETY: the queue exists while the set is live (type invariant,
        // `with_live`); the call only reads how the ring and its device
        // were set up.
        self.set
            .with_live(|| unsafe { bindings::vgpio_vq_maps(vq) })
            .unwrap_or(true)
    }

    /// The ring's size, in descriptors (0 once the queues are gone).
    pub(crate) fn size(&self) -> u32 {
        let vq = self.vq.as_ptr();
        // SAFETY: the queue exists while the set is live (type invariant,
        // `with_live`).
        self.set
            .with_live(|| unsafe { bindings::virtqueue_get_vring_size(vq) })
            .unwrap_or(0)
    }

    /// How many more messages fit (one descriptor each with indirect
    /// descriptors, else two; 0 once the queues are gone).
    pub(crate) fn num_free(&self) -> u32 {
        let vq = self.vq.as_ptr();
        // SAFETY: the queue exists while the set is live (type invariant,
        // `with_live`); reading num_free is what virtqueue_get_vring_size's
        // callers do too.
        self.set
            .with_live(|| unsafe { (*vq).num_free })
            .unwrap_or(0)
    }
}
