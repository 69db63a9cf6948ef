// SPDX-License-Identifier: GPL-2.0
//! The vhost-user side: QEMU's vhost-user-gpio-pci talks to this backend.
//!
//! One worker thread (the library's epoll loop) owns the virtqueues. Besides
//! the two queue kicks it listens to an eventfd, written by control-channel
//! threads after they changed the device, and to a timerfd for delayed
//! answers and edge trains.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use virtio_bindings::virtio_config::{VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_VERSION_1};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use vmm_sys_util::timerfd::TimerFd;

use crate::model::{Completion, Device, EVENTQ, REQUESTQ};
use crate::proto::VIRTIO_GPIO_F_IRQ;
use crate::vq;

pub const NUM_QUEUES: usize = 2;
/// Custom epoll events (the library reserves 0..=NUM_QUEUES).
pub const KICK_EVENT: u16 = NUM_QUEUES as u16 + 1;
pub const TIMER_EVENT: u16 = NUM_QUEUES as u16 + 2;

/// The device plus the answers a control command produced, which only the
/// worker thread may put on the virtqueues.
pub struct State {
    pub dev: Device,
    pub outbox: Vec<Completion>,
}

pub struct GpioBackend {
    pub state: Mutex<State>,
    mem: Mutex<Option<GuestMemoryAtomic<GuestMemoryMmap>>>,
    event_idx: AtomicBool,
    pub kick: EventFd,
    pub timer: Mutex<TimerFd>,
}

impl GpioBackend {
    pub fn new(dev: Device) -> io::Result<Self> {
        Ok(GpioBackend {
            state: Mutex::new(State { dev, outbox: Vec::new() }),
            mem: Mutex::new(None),
            event_idx: AtomicBool::new(false),
            kick: EventFd::new(EFD_NONBLOCK)?,
            timer: Mutex::new(nonblocking(TimerFd::new()?)?),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wake the worker: a control command changed something.
    pub fn notify(&self) {
        let _ = self.kick.write(1);
    }

    fn arm_timer(&self, st: &State) {
        let mut t = self.timer.lock().unwrap_or_else(|e| e.into_inner());
        match st.dev.next_deadline() {
            Some(at) => {
                let d = at.saturating_duration_since(Instant::now());
                // A zero duration would disarm the timer.
                let d = d.max(std::time::Duration::from_micros(1));
                let _ = t.reset(d, None);
            }
            None => {
                let _ = t.clear();
            }
        }
    }

    fn write_back(&self, vrings: &[VringRwLock], done: &[Completion]) -> io::Result<()> {
        let Some(mem) = self.mem.lock().unwrap().clone() else {
            return Ok(());
        };
        let mem = mem.memory();
        for q in [REQUESTQ, EVENTQ] {
            let mut any = false;
            {
                let mut vr = vrings[q].get_mut();
                let queue = vr.get_queue_mut();
                for c in done.iter().filter(|c| c.queue == q) {
                    vq::complete(queue, &*mem, c);
                    any = true;
                }
            }
            if any && vrings[q].needs_notification().unwrap_or(true) {
                vrings[q].signal_used_queue()?;
            }
        }
        Ok(())
    }

    fn process_queue(&self, q: usize, vrings: &[VringRwLock]) -> io::Result<()> {
        let Some(mem) = self.mem.lock().unwrap().clone() else {
            return Ok(());
        };
        let event_idx = self.event_idx.load(Ordering::Relaxed);
        loop {
            if event_idx {
                let _ = vrings[q].disable_notification();
            }
            let chains = {
                let mut vr = vrings[q].get_mut();
                vq::pop_chains(vr.get_queue_mut(), &*mem.memory())
            };
            if !chains.is_empty() {
                let done = {
                    let mut st = self.lock();
                    let mut done = std::mem::take(&mut st.outbox);
                    if q == REQUESTQ {
                        done.extend(st.dev.on_requests(chains, Instant::now()));
                    } else {
                        done.extend(st.dev.on_events(chains));
                    }
                    self.arm_timer(&st);
                    done
                };
                self.write_back(vrings, &done)?;
            }
            if !event_idx || !vrings[q].enable_notification().unwrap_or(false) {
                break;
            }
        }
        Ok(())
    }
}

impl VhostUserBackend for GpioBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        NUM_QUEUES
    }

    fn max_queue_size(&self) -> usize {
        1024
    }

    fn features(&self) -> u64 {
        let cfg = &self.lock().dev.cfg;
        let irq = if cfg.irq { 1 << VIRTIO_GPIO_F_IRQ } else { 0 };
        let dma = if cfg.access_platform { 1 << VIRTIO_F_ACCESS_PLATFORM } else { 0 };
        (1 << VIRTIO_F_VERSION_1)
            | (1 << VIRTIO_RING_F_INDIRECT_DESC)
            | (1 << VIRTIO_RING_F_EVENT_IDX)
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
            | irq
            | dma
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        let base = VhostUserProtocolFeatures::CONFIG | VhostUserProtocolFeatures::REPLY_ACK;
        // QEMU's iommu_platform=on wants the backend request channel (for
        // IOTLB misses under a vIOMMU; there is none here, so it stays idle).
        if self.lock().dev.cfg.access_platform {
            base | VhostUserProtocolFeatures::BACKEND_REQ
        } else {
            base
        }
    }

    fn set_event_idx(&self, enabled: bool) {
        self.event_idx.store(enabled, Ordering::Relaxed);
    }

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        let c = self.lock().dev.config_space();
        let start = (offset as usize).min(c.len());
        let end = (offset as usize + size as usize).min(c.len());
        let mut v = c[start..end].to_vec();
        v.resize(size as usize, 0);
        v
    }

    fn update_memory(&self, mem: GuestMemoryAtomic<GuestMemoryMmap>) -> io::Result<()> {
        *self.mem.lock().unwrap() = Some(mem);
        Ok(())
    }

    fn reset_device(&self) {
        let mut st = self.lock();
        st.dev.reset();
        st.outbox.clear();
    }

    fn stop_vring(&self, queue_index: u32) -> io::Result<()> {
        // The driver reset the device (or QEMU stopped it): buffers it gave
        // us are gone with the ring.
        let mut st = self.lock();
        if queue_index as usize == REQUESTQ {
            st.dev.reset();
        } else {
            st.dev.reset_eventq();
        }
        st.outbox.retain(|c| c.queue != queue_index as usize);
        Ok(())
    }

    fn handle_event(
        &self,
        device_event: u16,
        evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        if evset != EventSet::IN {
            return Ok(());
        }
        match device_event {
            e if (e as usize) < NUM_QUEUES => self.process_queue(e as usize, vrings),
            KICK_EVENT | TIMER_EVENT => {
                if device_event == KICK_EVENT {
                    let _ = self.kick.read();
                } else {
                    let _ = self.timer.lock().unwrap().wait();
                }
                let done = {
                    let mut st = self.lock();
                    let mut done = std::mem::take(&mut st.outbox);
                    done.extend(st.dev.tick(Instant::now()));
                    self.arm_timer(&st);
                    done
                };
                self.write_back(vrings, &done)
            }
            _ => Ok(()),
        }
    }
}

/// The worker reads the timerfd after epoll said it fired, but another
/// handler in the same epoll batch may have re-armed it meanwhile: never block.
fn nonblocking(t: TimerFd) -> io::Result<TimerFd> {
    use std::os::fd::AsRawFd;
    let fd = t.as_raw_fd();
    // SAFETY: fcntl on a descriptor this TimerFd owns; no memory is passed.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFL, libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(t)
}
