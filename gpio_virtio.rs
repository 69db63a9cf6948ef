// SPDX-License-Identifier: GPL-2.0

//! Guest driver for virtio-gpio devices (virtio device ID 41).
//!
//! Each line owns one requestq message. A request takes the line's message,
//! fills it in, hands it to the requestq and sleeps (killably) until the
//! device gives it back. While the device holds a message nobody else can
//! touch it: the virtqueue owns it. Requests for different lines go out in
//! parallel; `get_multiple`/`set_multiple` send one message per line at once
//! and then wait for all answers.
//!
//! This file is the device glue: the module, the per-device state and probe
//! and removal. The rest, by concern:
//! - `driver/requestq.rs`: the requestq, its messages and the requests;
//! - `driver/lines.rs`: the gpio_chip callbacks (and the irq_chip's, which
//!   only record what the irq core wants);
//! - `driver/irq.rs`: the interrupt state machine, the eventq and the
//!   SET_IRQ_TYPE sequences;
//! - `driver/names.rs`: the line names;
//! - `virtio_gpio_uapi.rs`: the wire format;
//! - `wrappers/`: the kernel APIs the kernel crate lacks (all the unsafe
//!   code), named after their subsystems, per kernel generation where they
//!   differ (`sync_k612.rs`, `sync_k7.rs`).

use kernel::prelude::*;

#[path = "wrappers/bindings.rs"]
mod bindings;
#[path = "wrappers/bitmap.rs"]
mod bitmap;
#[path = "wrappers/cstr.rs"]
mod cstr;
#[path = "wrappers/gpio.rs"]
mod gpio;
#[path = "wrappers/revocable.rs"]
mod revocable;
#[path = "wrappers/sync.rs"]
mod sync;
#[path = "virtio_gpio_uapi.rs"]
mod uapi;
#[path = "wrappers/virtio.rs"]
mod virtio;

// The driver, by concern (device glue and probe are here).
#[path = "driver/irq.rs"]
mod irq;
#[path = "driver/lines.rs"]
mod lines;
#[path = "driver/names.rs"]
mod names;
#[path = "driver/requestq.rs"]
mod requestq;

use cstr::cstr;
use irq::{EventQueue, IrqLine, IrqMsg};
use requestq::{ReqMsg, RequestQueue, Response, Slot, WAIT_BOUND_MS};
use sync::{lock_class, Moment, RawSpinLockIrq, SpinLockIrq};
use uapi::*;
use virtio::dev_log;

virtio::module_virtio_driver! {
    type: GpioVirtio,
    name: "gpio_virtio_rs",
    authors: ["virtio-gpio-rs maintainers <maintainers@users.noreply.h-seed-917fbecd.example>"],
    description: "VirtIO GPIO driver (Rust)",
    license: "GPL",
}

// udev loads the module for a virtio-gpio device (modpost makes the alias
// virtio:d00000029v* from this table)
virtio::virtio_device_table!(VIRTIO_GPIO_IDS, [virtio::DeviceId::new(VIRTIO_ID_GPIO)]);

/// The driver's state for one device: the gpio_chip registration, which
/// holds the device's state, [`VirtioGpio`].
type GpioVirtio = gpio::Registration<VirtioGpio>;

/// One virtio-gpio device.
#[pin_data]
struct VirtioGpio {
    vdev: virtio::ARef<virtio::Device>,
    ngpio: u16,
    names_size: u32,
    #[pin]
    rq: SpinLockIrq<RequestQueue>,
    /// Tells the device about requests, with the requestq lock dropped.
    rq_notifier: virtio::Notifier,
    /// The eventq and the lines' interrupt state, when VIRTIO_GPIO_F_IRQ
    /// was negotiated.
    #[pin]
    eq: RawSpinLockIrq<Option<EventQueue>>,
    /// The eventq when it maps through the DMA API (see `EventQueue::vq`),
    /// and whether it does. Taken before `eq`, never inside it.
    #[pin]
    eq_dma: SpinLockIrq<Option<virtio::Virtqueue<IrqMsg>>>,
    eq_maps_dma: bool,
    /// Every line's direction, fetched in parallel just before the chip is
    /// registered: gpiolib asks for each line's direction one by one while
    /// it registers the chip, and these answer it. Dropped right after.
    #[pin]
    probe_dirs: SpinLockIrq<Option<KVec<u8>>>,
}

impl VirtioGpio {
    /// Removal: fail new requests, stop the device, take back every message
    /// it held and wake their waiters, so that nobody stays blocked on a
    /// device that is gone.
    fn shutdown(&self, vdev: &virtio::Device<virtio::Core<'_>>) {
        self.rq.lock().gone = true;
        if let Some(eq) = &mut *self.eq.lock() {
            eq.gone = true;
        }
        // No eventq callback may deliver an interrupt once this returns:
        // the chip (and its irq domain) goes next. A callback that found a
        // message before `gone` was set finishes here; later ones find
        // nothing (the queues are broken) or see `gone`.
        let stopped = vdev.stop();
        {
            let mut q = self.rq.lock();
            while let Some(m) = q.vq.detach_unused(&stopped) {
                if let Some(s) = q.slots.get_mut(m.slot as usize) {
                    s.free = Some(m);
                }
            }
        }
        let put_back = |eq: &mut EventQueue, m: KBox<IrqMsg>| {
            if let Some(l) = eq.lines.get_mut(m.line as usize) {
                l.buf = Some(m);
            }
        };
        if let Some(vq) = &mut *self.eq_dma.lock() {
            while let Some(m) = vq.detach_unused(&stopped) {
                self.with_eq(|eq| put_back(eq, m));
            }
        }
        if let Some(eq) = &mut *self.eq.lock() {
            while let Some(m) = eq.vq.as_mut().and_then(|vq| vq.detach_unused(&stopped)) {
                put_back(eq, m);
            }
        }
        // Everybody who waits on the device: the tasks asleep until an
        // answer (found under the lock, a part of the up to 65536 slots at
        // a time: a task that goes to sleep after its part was looked at
        // saw `gone` first), every line's waiters (their keys after the
        // lock) and those waiting for room in the ring.
        let (slots, n) = {
            let q = self.rq.lock();
            (q.slots.as_ptr(), q.slots.len())
        };
        for part in (0..n).step_by(256) {
            let q = self.rq.lock();
            q.slots
                .iter()
                .skip(part)
                .take(256)
                .filter_map(|s| s.waiter.as_ref())
                .for_each(sync::Waiter::wake);
        }
        (0..n).for_each(|i| sync::wake_up_var(RequestQueue::key_of(slots, i)));
        sync::wake_up_var(self.ring_key());
    }
}

#[vtable]
impl virtio::Driver for GpioVirtio {
    const NAME: &'static CStr = cstr!(c"gpio-virtio-rs");
    const ID_TABLE: virtio::IdTable = &VIRTIO_GPIO_IDS;
    const FEATURES: &'static [u32] = &[VIRTIO_GPIO_F_IRQ];

    fn probe(
        vdev: &virtio::Device<virtio::Core<'_>>,
        vqs: virtio::FindVqs<'_, Self>,
    ) -> Result<impl PinInit<Self, Error>> {
        // 16- and 32-bit accesses, as the spec's access-width rules want.
        let ngpio = vdev.cread16(CONFIG_NGPIO);
        let names_size = vdev.cread32(CONFIG_GPIO_NAMES_SIZE);
        if ngpio == 0 {
            dev_log!(
                vdev,
                ERR,
                "device reports {} lines: nothing to drive\n",
                ngpio
            );
            return Err(EINVAL);
        }
        let irq = vdev.has_feature(VIRTIO_GPIO_F_IRQ);
        // Messages are two small buffers, in the ring as a two-descriptor
        // chain, never an indirect table: a table would cost an allocation
        // and a free per message, and the eventq adds its messages in
        // irq_unmask, under the irq descriptor's raw spinlock, where
        // allocating is invalid on PREEMPT_RT (the slab's locks sleep
        // there). The price: QEMU's 64-entry eventq holds 32 lines' messages
        // at once; further lines wait for a free slot (`want_slot`).
        let (requestq, eventq) = vdev.find_vqs::<GpioVirtio, ReqMsg, IrqMsg>(
            vqs,
            [cstr!(c"requestq"), cstr!(c"eventq")],
            [true, true],
            irq,
        )?;
        // Every message is a chain of two descriptors: a smaller ring could
        // never take one, and a request would wait for room for ever.
        if requestq.size() < 2 || eventq.as_ref().is_some_and(|q| q.size() < 2) {
            dev_log!(
                vdev,
                ERR,
                "virtqueues of {} and {} descriptors: a message needs 2\n",
                requestq.size(),
                eventq.as_ref().map_or(0, |q| q.size())
            );
            return Err(EINVAL);
        }
        let mut slots = KVec::with_capacity(ngpio as usize + 1, GFP_KERNEL)?;
        for slot in 0..=ngpio {
            let free = if slot < ngpio {
                Some(KBox::new(
                    ReqMsg {
                        slot,
                        req: [0; 8],
                        res: Response::Line([0; 2]),
                    },
                    GFP_KERNEL,
                )?)
            } else {
                None
            };
            slots.push(
                Slot {
                    free,
                    ..Default::default()
                },
                GFP_KERNEL,
            )?;
        }
        let rq_notifier = requestq.notifier();
        let rq = RequestQueue {
            vq: requestq,
            gone: false,
            // (set by `init`, where probe's requests begin)
            starting: None,
            slots,
            ring_waiters: 0,
        };
        let eq_maps_dma = eventq.as_ref().is_some_and(|q| q.maps_dma());
        let (eventq, eq_dma) = if eq_maps_dma {
            (None, eventq)
        } else {
            (eventq, None)
        };
        let eq = if eventq.is_some() || eq_dma.is_some() {
            let mut lines = KVec::with_capacity(ngpio as usize, GFP_KERNEL)?;
            for line in 0..ngpio {
                lines.push(
                    IrqLine {
                        type_: VIRTIO_GPIO_IRQ_TYPE_NONE,
                        sent: Some(VIRTIO_GPIO_IRQ_TYPE_NONE),
                        disabled: true,
                        output: false,
                        freed: 0,
                        typing: false,
                        masked: true,
                        buf: Some(KBox::new(
                            IrqMsg {
                                line,
                                req: [0; 2],
                                res: [0],
                            },
                            GFP_KERNEL,
                        )?),
                        want_slot: false,
                        prev: None,
                        next: None,
                        unheard: 0,
                        parked: false,
                        queued_pass: 0,
                        deferred: None,
                    },
                    GFP_KERNEL,
                )?;
            }
            Some(EventQueue {
                vq: eventq,
                gone: false,
                lines,
                first: None,
                last: None,
                pass: 0,
                in_pass: false,
                deferred: None,
            })
        } else {
            None
        };
        let data = try_pin_init!(VirtioGpio {
            vdev: vdev.into(),
            ngpio,
            names_size,
            rq <- SpinLockIrq::new(rq, cstr!(c"virtio_gpio_rs.requestq"), lock_class!()),
            rq_notifier,
            eq <- RawSpinLockIrq::new(eq, cstr!(c"virtio_gpio_rs.eventq"), lock_class!()),
            eq_dma <- SpinLockIrq::new(eq_dma, cstr!(c"virtio_gpio_rs.eventq_dma"), lock_class!()),
            eq_maps_dma,
            probe_dirs <- SpinLockIrq::new(None, cstr!(c"virtio_gpio_rs.probe_dirs"), lock_class!()),
        }? Error);
        Ok(gpio::Registration::new(data))
    }

    fn init(&self, vdev: &virtio::Device<virtio::Core<'_>>) -> Result {
        let chip = self;
        let this = chip.data();
        // Probe's bound counts from its first request: allocating the
        // state of 65535 lines takes seconds on a slow (or a debug) kernel.
        this.rq.lock().starting = Some((Moment::after_ms(WAIT_BOUND_MS), kernel::current!().pid()));
        let names = this.fetch_names()?;
        let irq = this.eq.lock().is_some();
        // Without the directions gpiolib asks line by line; a device that
        // is gone, or silent, or a prober that was killed ends probe here.
        let dirs = match this.fetch_directions() {
            Ok(d) => Some(d),
            Err(e) if e == EIO => None,
            Err(e) => return Err(e),
        };
        *this.probe_dirs.lock() = dirs;
        let r = if irq {
            chip.register_with_irq(vdev, &THIS_MODULE, this.ngpio, names)
        } else {
            chip.register(vdev, &THIS_MODULE, this.ngpio, names)
        };
        // Free it outside the lock.
        let dirs = this.probe_dirs.lock().take();
        drop(dirs);
        r?;
        this.rq.lock().starting = None;
        dev_log!(
            vdev,
            DEBUG,
            "{} lines, irq {}\n",
            this.ngpio,
            if irq { "yes" } else { "no" }
        );
        Ok(())
    }

    fn remove(&self, vdev: &virtio::Device<virtio::Core<'_>>) {
        self.data().shutdown(vdev);
        self.unregister();
    }

    fn vq_callback(&self, index: usize) {
        if index == 0 {
            self.data().requestq_done();
        } else {
            self.data().eventq_done(|hwirq| self.handle_irq(hwirq));
        }
    }
}
