//! The challenge a caller signs to prove it holds its certificate's private key (where no TLS
//! handshake proved it: the command line). Writ's rules verify the signature with the leaf's
//! public key (writ-core's `possession`); the layout is here so every side builds it alike.

/// The prefix of every challenge: a signature over it means nothing anywhere else.
pub const CONTEXT: &[u8] = b"writ possession proof v1\n";

/// The challenge: [`CONTEXT`], what the proof is for (`binding`: the command, the
/// credential, the intent), a newline, `now` (big-endian seconds) and a fresh `nonce`.
pub fn challenge(binding: &str, now: u64, nonce: &[u8]) -> Vec<u8> {
    let mut m = CONTEXT.to_vec();
    m.extend_from_slice(binding.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(&now.to_be_bytes());
    m.extend_from_slice(nonce);
    m
}
