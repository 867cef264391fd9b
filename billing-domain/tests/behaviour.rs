//! The behaviour suite on the in-memory store. The PostgreSQL store runs the
//! same cases from its own crate.

use std::sync::Arc;

use billing_domain::memory::MemoryStore;
use billing_domain::store::Store;

billing_domain::behaviour_suite!(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> });
