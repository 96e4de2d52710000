//! Identifiers: ULIDs, which sort by creation time and carry 80 random bits.

use std::sync::Mutex;

use ulid::{Generator, Ulid};

/// A sortable unique event id in its canonical 26-character Crockford base32 form.
pub type EventId = String;

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

/// Returns a new ULID string that sorts after every id this process generated before it.
///
/// A monotonic generator is used so that ids made within one millisecond still sort in the
/// order they were made; event ids depend on that to give the log a stable order.
pub fn new_id() -> String {
    let mut guard = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let generator = guard.get_or_insert_with(Generator::new);
    match generator.generate() {
        Ok(id) => id.to_string(),
        // The random part overflowed within one millisecond; a fresh id is still unique.
        Err(_) => Ulid::new().to_string(),
    }
}

/// Checks that `value` is a canonical ULID string.
pub fn is_valid_id(value: &str) -> bool {
    value.len() == 26 && Ulid::from_string(value).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_creation_order() {
        let ids: Vec<String> = (0..1000).map(|_| new_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn ids_are_valid() {
        assert!(is_valid_id(&new_id()));
        assert!(!is_valid_id("not-an-id"));
    }
}
