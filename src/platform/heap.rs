//! The wasm heap: every block is a power of two from 16 bytes up, and each size has its own
//! free list. Allocation and release are a list pop and push; memory the runtime grows is
//! carved off in order and never handed back (wasm memory cannot shrink). It replaces the
//! standard library's dlmalloc, which costs ~4 KB gzip of wasm; the price is up to twice the
//! requested size per block and no reuse of a freed block by another size, which the soak test
//! watches (`wasm_memory_kib` in each request's log line).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr::null_mut;

const PAGE: usize = 65536;
/// The smallest block, 2^4 bytes: room for a free list's link.
const MIN_CLASS: u32 = 4;
/// Classes 2^4 .. 2^31 bytes (wasm32 addresses are 32 bits).
const CLASSES: usize = 32;
/// Fresh blocks are aligned to their size up to this; a larger alignment is refused (null).
const MAX_ALIGN: usize = 4096;

/// Where more memory comes from: `grow(pages)` adds `pages` pages and returns the address
/// where they start, or `None` when the runtime refuses.
pub trait Grow {
    fn grow(&self, pages: usize) -> Option<usize>;
}

struct State {
    /// Head of each class's free list (0 = empty); a free block's first word links the next.
    free: [usize; CLASSES],
    /// The unused rest of the memory grown so far.
    next: usize,
    end: usize,
}

/// The allocator. Not thread-safe: wasm32-unknown-unknown runs one thread per instance.
pub struct Heap<G: Grow> {
    state: UnsafeCell<State>,
    grow: G,
}

// SAFETY: the Worker's wasm instance has one thread; nothing reaches the heap concurrently.
unsafe impl<G: Grow> Sync for Heap<G> {}

/// The size class of `layout`: log2 of its block size, or `None` above 2^31 bytes.
fn class(layout: &Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_CLASS);
    let class = size.checked_next_power_of_two()?.trailing_zeros() as usize;
    (class < CLASSES).then_some(class)
}

impl<G: Grow> Heap<G> {
    pub const fn new(grow: G) -> Self {
        Heap { state: UnsafeCell::new(State { free: [0; CLASSES], next: 0, end: 0 }), grow }
    }

    /// A fresh block of `size` bytes (a power of two), aligned to its size up to MAX_ALIGN.
    fn carve(&self, state: &mut State, size: usize) -> Option<usize> {
        let align = size.min(MAX_ALIGN);
        let mut start = state.next.checked_add(align - 1)? & !(align - 1);
        if start.checked_add(size)? > state.end {
            let short = start.checked_add(size)? - state.end;
            let pages = short.div_ceil(PAGE).max(1);
            let at = self.grow.grow(pages)?;
            if at != state.end {
                // Not contiguous with what is left (the first growth): start over there.
                state.next = at;
                start = at.checked_add(align - 1)? & !(align - 1);
            }
            state.end = at.checked_add(pages.checked_mul(PAGE)?)?;
            if start.checked_add(size)? > state.end {
                return self.carve(state, size);
            }
        }
        state.next = start + size;
        Some(start)
    }
}

unsafe impl<G: Grow> GlobalAlloc for Heap<G> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > MAX_ALIGN {
            return null_mut();
        }
        let Some(class) = class(&layout) else { return null_mut() };
        // SAFETY: one thread, and no allocator call re-enters another.
        let state = unsafe { &mut *self.state.get() };
        let head = state.free[class];
        if head != 0 {
            // SAFETY: `head` is a free block of this class; its first word is the next link.
            state.free[class] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        self.carve(state, 1 << class).map_or(null_mut(), |at| at as *mut u8)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class(&layout) else { return };
        // SAFETY: one thread; `ptr` came from `alloc` with this layout, so it is a block of this
        // class of at least 16 bytes, aligned for a usize.
        let state = unsafe { &mut *self.state.get() };
        unsafe { *(ptr as *mut usize) = state.free[class] };
        state.free[class] = ptr as usize;
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (all three calls): the caller's guarantees for `realloc` cover them.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if class(&layout) == class(&new_layout) {
            return ptr;
        }
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// The wasm instance's own memory.
#[cfg(target_arch = "wasm32")]
pub struct WasmMemory;

#[cfg(target_arch = "wasm32")]
impl Grow for WasmMemory {
    fn grow(&self, pages: usize) -> Option<usize> {
        let previous = core::arch::wasm32::memory_grow(0, pages);
        (previous != usize::MAX).then(|| previous * PAGE)
    }
}

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static HEAP: Heap<WasmMemory> = Heap::new(WasmMemory);

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Pages handed out from one big host allocation, as wasm memory grows: contiguous, with a
    /// cap (and a gap once, to check that a non-contiguous growth is handled).
    struct Arena {
        base: usize,
        pages: usize,
        used: Cell<usize>,
        gap_at: Cell<Option<usize>>,
        grown: Cell<usize>,
    }

    impl Arena {
        fn new(pages: usize) -> Self {
            let layout = Layout::from_size_align(pages * PAGE, PAGE).unwrap();
            let base = unsafe { std::alloc::alloc(layout) } as usize;
            assert_ne!(base, 0);
            Arena { base, pages, used: Cell::new(0), gap_at: Cell::new(None), grown: Cell::new(0) }
        }
    }

    impl Grow for &Arena {
        fn grow(&self, pages: usize) -> Option<usize> {
            if self.gap_at.get() == Some(self.grown.get()) {
                self.used.set(self.used.get() + 1);
            }
            self.grown.set(self.grown.get() + 1);
            let at = self.used.get();
            (at + pages <= self.pages).then(|| {
                self.used.set(at + pages);
                self.base + at * PAGE
            })
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_reused_by_their_size_only() {
        let arena = Arena::new(64);
        arena.gap_at.set(Some(1));
        let heap = Heap::new(&arena);
        let mut live: Vec<(usize, Layout)> = Vec::new();
        let sizes = [1, 7, 16, 17, 24, 100, 4096, 5000, 70_000, 3, 33, 1000];
        for round in 0..40 {
            for (i, &size) in sizes.iter().enumerate() {
                let l = layout(size, [1, 2, 4, 8, 16, 64][(round + i) % 6]);
                let p = unsafe { heap.alloc(l) } as usize;
                assert_ne!(p, 0);
                assert_eq!(p % l.align(), 0);
                unsafe { std::ptr::write_bytes(p as *mut u8, (round % 251) as u8, size) };
                live.push((p, l));
            }
            // Free every other block, so later rounds reuse them.
            let mut i = 0;
            live.retain(|&(p, l)| {
                i += 1;
                if i % 2 == 0 {
                    unsafe { heap.dealloc(p as *mut u8, l) };
                }
                i % 2 != 0
            });
        }
        let mut spans: Vec<(usize, usize)> = live.iter().map(|&(p, l)| (p, p + l.size())).collect();
        spans.sort();
        assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "live blocks overlap");
        assert!(spans.iter().all(|&(s, e)| s >= arena.base && e <= arena.base + arena.pages * PAGE));
        // A freed block comes back for its own size, and not for another.
        let small = layout(20, 8);
        let p = unsafe { heap.alloc(small) };
        unsafe { heap.dealloc(p, small) };
        assert_eq!(unsafe { heap.alloc(layout(32, 8)) }, p);
        let q = unsafe { heap.alloc(layout(40, 8)) };
        assert_ne!(q, p);
    }

    #[test]
    fn realloc_keeps_the_bytes_and_the_block_within_its_size() {
        let arena = Arena::new(16);
        let heap = Heap::new(&arena);
        let l = layout(10, 1);
        let p = unsafe { heap.alloc(l) };
        unsafe { std::ptr::copy_nonoverlapping(b"0123456789".as_ptr(), p, 10) };
        assert_eq!(unsafe { heap.realloc(p, l, 16) }, p, "same 16-byte block");
        let grown = unsafe { heap.realloc(p, layout(16, 1), 1000) };
        assert_ne!(grown, p);
        assert_eq!(unsafe { std::slice::from_raw_parts(grown, 10) }, b"0123456789");
        let shrunk = unsafe { heap.realloc(grown, layout(1000, 1), 5) };
        assert_eq!(unsafe { std::slice::from_raw_parts(shrunk, 5) }, b"01234");
        // The 1000-byte block was freed: the next one of its size is it.
        assert_eq!(unsafe { heap.alloc(layout(1024, 1)) }, grown);
    }

    #[test]
    fn a_refused_growth_is_a_null_block_not_a_crash() {
        let arena = Arena::new(4);
        let heap = Heap::new(&arena);
        assert!(unsafe { heap.alloc(layout(5 * PAGE, 8)) }.is_null());
        assert!(!unsafe { heap.alloc(layout(2 * PAGE, 8)) }.is_null());
        assert!(unsafe { heap.alloc(layout(1 << 40, 8)) }.is_null(), "above the largest class");
        assert!(unsafe { heap.alloc(layout(8192, 8192)) }.is_null(), "an alignment it cannot promise");
        let p = unsafe { heap.alloc(layout(8, 8)) };
        assert!(!p.is_null());
        let l = layout(2 * PAGE, 8);
        assert!(unsafe { heap.realloc(p, layout(8, 8), l.size() * 2) }.is_null());
        // The old block is intact and still its owner's after a failed realloc.
        unsafe { heap.dealloc(p, layout(8, 8)) };
    }
}
