//! The controller's decisions, as I/O-free functions of the current metadata (and, for
//! liveness, of the time). The active controller calls them and writes the commands they
//! return to the metadata log; tests call them directly.

pub mod acls;
pub mod config;
pub mod election;
pub mod groups;
pub mod isr;
pub mod liveness;
pub mod placement;
pub mod reassignment;
pub mod rebalance;
pub mod topics;
pub mod users;
