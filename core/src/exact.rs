//! Exact equality of byte strings, eight bytes at a time.
//!
//! WebAssembly has no instruction for comparing memory, so inside the component `==` on
//! strings is the compiler's byte-by-byte `memcmp`: on a cached credential (~600 bytes) that
//! loop was 15% of a `present`. Comparing `u64` words gives the same answer (equal lengths and
//! equal bytes) in an eighth of the steps; natively it costs no more than `memcmp`.

/// `a == b`, compared word by word.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_tail) = a.as_chunks::<8>();
    let (b_words, b_tail) = b.as_chunks::<8>();
    // The tail is folded, not `==`: slice equality would call `memcmp` again.
    a_tail.iter().zip(b_tail).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
        && a_words.iter().zip(b_words).all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
}

/// `a == b` for text, compared word by word.
pub fn same_text(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Word-wise equality answers exactly as `==` on any pair, including pairs that differ
        /// in one byte anywhere (head, words, tail) or only in length.
        #[test]
        fn same_bytes_is_equality(a in proptest::collection::vec(any::<u8>(), 0..80), flip in any::<prop::sample::Index>(), bit in 0u8..8, cut in any::<prop::sample::Index>()) {
            prop_assert!(same_bytes(&a, &a.clone()));
            if !a.is_empty() {
                let mut b = a.clone();
                let i = flip.index(a.len());
                b[i] ^= 1 << bit;
                prop_assert!(!same_bytes(&a, &b));
                let shorter = &a[..cut.index(a.len())];
                prop_assert!(!same_bytes(&a, shorter));
                prop_assert!(!same_bytes(shorter, &a));
            }
        }

        #[test]
        fn same_bytes_matches_eq_on_random_pairs(a in proptest::collection::vec(0u8..3, 0..24), b in proptest::collection::vec(0u8..3, 0..24)) {
            prop_assert_eq!(same_bytes(&a, &b), a == b);
        }
    }

    #[test]
    fn same_text_compares_text() {
        assert!(same_text("credential.header.signature", "credential.header.signature"));
        assert!(!same_text("credential.header.signature", "credential.header.signaturf"));
        assert!(!same_text("", "x"));
        assert!(same_text("", ""));
    }
}
