//! Timed tests run alone. Every test's own thread holds a shared claim on the
//! machine from the moment it first touches a database server; a timed test
//! takes the claim exclusively, so it waits for the tests in flight to finish
//! and the tests after it wait for it. Latency measured while other tests
//! build catalogs and tenant databases on the same two cores would measure
//! them, not the code under test.

use std::cell::RefCell;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static MACHINE: RwLock<()> = RwLock::new(());

enum Claim {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

thread_local! {
    // Dropped when the test's thread ends, which releases the claim.
    static CLAIM: RefCell<Option<Claim>> = const { RefCell::new(None) };
}

/// Takes this test's shared claim, once. Only a test's own thread claims
/// (libtest names it after the test, `module::name`): a thread the test
/// spawns never blocks on the lock, so a test can never wait for itself.
pub fn share() {
    let is_test_thread = std::thread::current()
        .name()
        .is_some_and(|n| n.contains("::"));
    if !is_test_thread {
        return;
    }
    CLAIM.with(|claim| {
        let mut claim = claim.borrow_mut();
        if claim.is_none() {
            let guard = MACHINE
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *claim = Some(Claim::Shared(guard));
        }
    });
}

/// Waits until no other test is running and keeps them out until this
/// test's thread ends. Call it first thing in a timed test.
pub fn run_alone() {
    CLAIM.with(|claim| {
        let mut claim = claim.borrow_mut();
        // A shared claim of our own would make us wait for ourselves.
        *claim = None;
        let guard = MACHINE
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *claim = Some(Claim::Exclusive(guard));
    });
}
