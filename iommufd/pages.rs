// SPDX-License-Identifier: GPL-2.0

//! The user memory behind mapped areas, and its pins.
//!
//! `IOMMU_IOAS_MAP` makes one [`Pages`] for the user range it maps; `IOMMU_IOAS_COPY` makes new
//! areas, possibly in another IOAS, that share the `Pages` of existing ones instead of
//! looking the memory up again. So a `Pages` lives as long as any area uses it.
//!
//! Nothing is pinned while nothing needs the memory itself: an IOAS with no IOMMU domain and
//! no emulated device only records ranges, as upstream. Each thing that needs a range of the
//! pages (an area mapped into domains, an emulated device's pin) takes a *use* of that range
//! with [`Pages::pin`]; a page is pinned once however many uses it has, and unpinned when its
//! last use goes ([`Pages::unpin`]). So the same memory mapped into two domains, or mapped and
//! pinned by an emulated device, holds one pin, and tests that count pins see exactly one.
//!
//! Charging: a page is charged to the memory's owner when it is pinned and refunded when it is
//! unpinned; the charge is taken before pinning, so going over `RLIMIT_MEMLOCK` fails with
//! `ENOMEM` with nothing pinned. Who is charged is fixed when the `Pages` is made: nobody if
//! the mapping process has `CAP_IPC_LOCK`, else its user or its process as the context's
//! `IOMMU_OPTION_RLIMIT_MODE` says.
//!
//! Locking: `pins` is taken inside the io_pagetable's lock and never calls out to it.

use crate::context::AccountMode;
use kernel::{
    alloc::KVVec,
    capability::{
        capable,
        Capability, //
    },
    fs::File,
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::aref::ARef,
    sync::{
        Arc,
        Mutex, //
    },
    user_pin::{
        empty_slots,
        pin_file_pages,
        unpin_pages,
        PinOwner,
        PinnedPage, //
    },
};

/// Who pinned pages are charged to.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Charge {
    /// Nobody: the owner has `CAP_IPC_LOCK`.
    Nobody,
    User,
    Process,
}

/// The pinned state of a [`Pages`].
struct Pins {
    /// One slot per page, `None` while that page is not pinned. Empty until the first pin.
    pages: KVVec<Option<PinnedPage>>,
    /// How many uses each page has; a page is pinned exactly when its count is not zero.
    uses: KVVec<u32>,
    /// How many pages are pinned (and charged).
    npinned: usize,
    /// The process whose memory this is. `None` for memory mapped by a kernel thread (KUnit),
    /// which can be recorded but never pinned.
    owner: Option<PinOwner>,
    charge: Charge,
}

/// Where the memory is.
enum Source {
    /// Process memory: the user address of the first page.
    User(u64),
    /// A memfd (`IOMMU_IOAS_MAP_FILE`): the file, and the offset of the first page in it.
    File(ARef<File>, u64),
}

/// A page-aligned range of user memory.
#[pin_data(PinnedDrop)]
pub(crate) struct Pages {
    source: Source,
    /// Number of pages.
    npages: usize,
    /// Whether devices may write to the memory.
    writable: bool,
    #[pin]
    pins: Mutex<Pins>,
}

impl Pages {
    /// The pages holding `length` bytes at user address `uptr` of the current process, and the
    /// offset of `uptr` in the first of them.
    pub(crate) fn user(
        uptr: u64,
        length: u64,
        writable: bool,
        mode: AccountMode,
    ) -> Result<(Arc<Self>, u64)> {
        uptr.checked_add(length).ok_or(EOVERFLOW)?;
        let offset = uptr % PAGE_SIZE as u64;
        Self::new(Source::User(uptr - offset), offset, length, writable, mode)
    }

    /// The pages holding `length` bytes from byte `start` of memfd `file`, and the offset of
    /// `start` in the first of them.
    pub(crate) fn file(
        file: ARef<File>,
        start: u64,
        length: u64,
        writable: bool,
        mode: AccountMode,
    ) -> Result<(Arc<Self>, u64)> {
        let offset = start % PAGE_SIZE as u64;
        Self::new(
            Source::File(file, start - offset),
            offset,
            length,
            writable,
            mode,
        )
    }

    fn new(
        source: Source,
        offset: u64,
        length: u64,
        writable: bool,
        mode: AccountMode,
    ) -> Result<(Arc<Self>, u64)> {
        let page = PAGE_SIZE as u64;
        if length == 0 || length > u64::MAX - page {
            return Err(EINVAL);
        }
        let npages = usize::try_from((offset + length).div_ceil(page)).map_err(|_| EINVAL)?;
        let charge = if capable(Capability::IPC_LOCK) {
            Charge::Nobody
        } else {
            match mode {
                AccountMode::User => Charge::User,
                AccountMode::Mm => Charge::Process,
            }
        };
        let pages = Arc::pin_init(
            pin_init!(Self {
                source,
                npages,
                writable,
                pins <- new_mutex!(Pins {
                    pages: KVVec::new(),
                    uses: KVVec::new(),
                    npinned: 0,
                    owner: PinOwner::current().ok(),
                    charge,
                }),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        Ok((pages, offset))
    }

    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// The address `offset` bytes into these pages: a user address, or an offset in the file.
    /// Automatic IOVAs are aligned like it, so that large pages can map the memory.
    pub(crate) fn address(&self, offset: u64) -> u64 {
        match &self.source {
            Source::User(uptr) => uptr + offset,
            Source::File(_, start) => start + offset,
        }
    }

    /// The page index holding byte `offset` of these pages.
    pub(crate) fn index(offset: u64) -> usize {
        (offset / PAGE_SIZE as u64) as usize
    }

    /// Takes a use of pages `first..=last`, pinning (and charging) those that had none.
    ///
    /// On failure nothing changes: `ENOMEM` past the owner's limit, or the error pinning gave
    /// (`EFAULT` for unmapped memory, ...).
    pub(crate) fn pin(&self, first: usize, last: usize) -> Result {
        if first > last || last >= self.npages {
            return Err(EINVAL);
        }
        let mut p = self.pins.lock();
        if p.pages.is_empty() {
            let pages = empty_slots(self.npages, GFP_KERNEL_ACCOUNT)?;
            let mut uses = KVVec::with_capacity(self.npages, GFP_KERNEL_ACCOUNT)?;
            uses.resize(self.npages, 0, GFP_KERNEL_ACCOUNT)?;
            p.pages = pages;
            p.uses = uses;
        }
        let wanted = p.uses[first..=last].iter().filter(|&&u| u == 0).count();
        if wanted != 0 {
            p.charge(wanted)?;
            if let Err(e) = self.pin_unused(&mut p, first, last) {
                let Pins { pages, uses, .. } = &mut *p;
                for (slot, &u) in pages[first..=last].iter_mut().zip(&uses[first..=last]) {
                    if u == 0 {
                        unpin_pages(core::slice::from_mut(slot), self.writable);
                    }
                }
                p.refund(wanted);
                return Err(e);
            }
            p.npinned += wanted;
        }
        for u in &mut p.uses[first..=last] {
            *u += 1;
        }
        Ok(())
    }

    /// Pins every page of `first..=last` that has no use yet.
    fn pin_unused(&self, p: &mut Pins, first: usize, last: usize) -> Result {
        let Pins {
            pages, uses, owner, ..
        } = p;
        let owner = owner.as_ref().ok_or(EFAULT)?;
        let mut i = first;
        while i <= last {
            if uses[i] != 0 {
                i += 1;
                continue;
            }
            let mut end = i;
            while end < last && uses[end + 1] == 0 {
                end += 1;
            }
            let at = i * PAGE_SIZE;
            i += match &self.source {
                Source::User(uptr) => {
                    owner.pin(*uptr as usize + at, self.writable, &mut pages[i..=end])?
                }
                Source::File(file, start) => {
                    pin_file_pages(file, start + at as u64, &mut pages[i..=end])?
                }
            };
        }
        Ok(())
    }

    /// Drops a use of pages `first..=last` taken with [`Pages::pin`], unpinning (and refunding)
    /// those left with none.
    pub(crate) fn unpin(&self, first: usize, last: usize) {
        let mut p = self.pins.lock();
        if last >= p.uses.len() || first > last {
            return;
        }
        let mut freed = 0;
        let Pins { pages, uses, .. } = &mut *p;
        for (slot, u) in pages[first..=last].iter_mut().zip(&mut uses[first..=last]) {
            *u = u.saturating_sub(1);
            if *u == 0 && slot.is_some() {
                freed += 1;
            }
        }
        // Unpin in runs: pages with no use left lose their pin.
        let mut i = first;
        while i <= last {
            if uses[i] != 0 || pages[i].is_none() {
                i += 1;
                continue;
            }
            let start = i;
            while i <= last && uses[i] == 0 && pages[i].is_some() {
                i += 1;
            }
            unpin_pages(&mut pages[start..i], self.writable);
        }
        p.npinned -= freed;
        p.refund(freed);
    }

    /// Calls `f` with the physical address of each pinned page of `first..=last`, in order.
    /// The pages must have a use (taken with [`Pages::pin`]); `EFAULT` for one that has none.
    pub(crate) fn for_each_phys(
        &self,
        first: usize,
        last: usize,
        mut f: impl FnMut(usize, u64) -> Result,
    ) -> Result {
        let p = self.pins.lock();
        let slots = p.pages.get(first..=last).ok_or(EFAULT)?;
        for (i, slot) in slots.iter().enumerate() {
            f(first + i, slot.as_ref().ok_or(EFAULT)?.phys())?;
        }
        Ok(())
    }

    /// Calls `f` with pinned page `index`; `EFAULT` if it has no use.
    pub(crate) fn with_page<R>(&self, index: usize, f: impl FnOnce(&PinnedPage) -> R) -> Result<R> {
        let p = self.pins.lock();
        let page = p.pages.get(index).and_then(Option::as_ref).ok_or(EFAULT)?;
        Ok(f(page))
    }
}

impl Pages {
    /// Whether the memory is a file's, which does not depend on the process that mapped it.
    pub(crate) fn is_file(&self) -> bool {
        matches!(self.source, Source::File(..))
    }

    /// Makes the current process the owner of these pages (`IOMMU_IOAS_CHANGE_PROCESS`): it
    /// is charged for what is pinned and the old owner refunded. Returns the old owner, to
    /// give back with [`Pages::restore_owner`] if the caller must undo; `None` if the current
    /// process owned them already. `ENOMEM` if it cannot take the charge: nothing changes.
    pub(crate) fn move_to_current(&self) -> Result<Option<PinOwner>> {
        let mut p = self.pins.lock();
        if p.owner.as_ref().is_some_and(PinOwner::is_current) {
            return Ok(None);
        }
        let new = PinOwner::current()?;
        p.switch_owner(Some(new))
    }

    /// Gives the pages back to `old`, undoing [`Pages::move_to_current`].
    pub(crate) fn restore_owner(&self, old: PinOwner) {
        let _ = self.pins.lock().switch_owner(Some(old));
    }
}

impl Pins {
    /// Moves the pinned pages' charge to `new` and returns the previous owner; `ENOMEM`,
    /// with nothing changed, if `new` cannot take it.
    fn switch_owner(&mut self, new: Option<PinOwner>) -> Result<Option<PinOwner>> {
        let n = self.npinned;
        let old = core::mem::replace(&mut self.owner, new);
        if n == 0 {
            return Ok(old);
        }
        if let Err(e) = self.charge(n) {
            self.owner = old;
            return Err(e);
        }
        let new = core::mem::replace(&mut self.owner, old);
        self.refund(n);
        Ok(core::mem::replace(&mut self.owner, new))
    }
}

impl Pins {
    fn charge(&self, npages: usize) -> Result {
        let owner = self.owner.as_ref().ok_or(EFAULT)?;
        match self.charge {
            Charge::Nobody => {}
            Charge::User => owner.charge_user(npages)?,
            Charge::Process => owner.charge_mm(npages, true)?,
        }
        owner.add_pinned_vm(npages as i64);
        Ok(())
    }

    fn refund(&self, npages: usize) {
        let Some(owner) = self.owner.as_ref() else {
            return;
        };
        if npages == 0 {
            return;
        }
        match self.charge {
            Charge::Nobody => {}
            Charge::User => owner.uncharge_user(npages),
            // Fails only if the process is gone, and its locked_vm with it.
            Charge::Process => {
                let _ = owner.charge_mm(npages, false);
            }
        }
        owner.add_pinned_vm(-(npages as i64));
    }
}

#[pinned_drop]
impl PinnedDrop for Pages {
    fn drop(self: Pin<&mut Self>) {
        // Every use is given back before the last area or pin goes; this only guards against
        // a leak if one was not.
        let mut p = self.pins.lock();
        let n = p.npinned;
        unpin_pages(&mut p.pages, self.writable);
        p.npinned = 0;
        p.refund(n);
    }
}
