//! The revocation feed: the filter polls the decision server's `/ledger/revocations` on the
//! proxy's tick (an HTTP callout, never blocking a request), asking for pages signed by the
//! issuer; it applies the events of a page that verifies (the issuer's key, this request's
//! `after`, made within `stale_after_secs`) — tasks opened and ended, agents cut off and
//! restored — to its ledger, refuses anything else (a forged or replayed page changes
//! nothing), notices a server restart, and refuses credentials while stale.

use crate::filter::Filter;
use writ_core::MemoryLedger;

/// Where the revocation feed stands.
#[derive(Debug, Default)]
pub(crate) struct Feed {
    /// The `after` of the next poll, and of the one in flight.
    after: u64,
    requested_after: u64,
    epoch: Option<String>,
    synced_at: Option<u64>,
    in_flight: bool,
}

/// One poll of the revocation feed, for the proxy to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedCall {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub timeout_ms: u64,
}

impl Filter {
    /// The ledger presented credentials are checked against (filled from the feed).
    pub fn ledger(&self) -> &MemoryLedger {
        &self.ledger
    }

    /// Why revocations are not known well enough to accept a credential, if they are not.
    pub(crate) fn stale(&self, now: u64) -> Option<String> {
        let feed = self.config.revocations.as_ref()?;
        match self.feed.synced_at {
            None => Some("the revocation feed has not been read yet".into()),
            Some(t) if now > t.saturating_add(feed.stale_after_secs) => {
                Some(format!("the revocation feed was last read at {t}, over {} s ago", feed.stale_after_secs))
            }
            Some(_) => None,
        }
    }

    /// The next poll of the revocation feed (on the proxy's tick); `None` when there is no
    /// feed or a poll is still in flight.
    pub fn feed_call(&mut self) -> Option<FeedCall> {
        let f = self.config.revocations.as_ref()?;
        if self.feed.in_flight {
            return None;
        }
        self.feed.in_flight = true;
        self.feed.requested_after = self.feed.after;
        let headers = vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), format!("{}?after={}", f.path, self.feed.after)),
            (":authority".to_string(), f.authority.clone()),
            ("accept".to_string(), "application/jwt".to_string()),
        ];
        Some(FeedCall { cluster: f.cluster.clone(), headers, timeout_ms: f.timeout_ms })
    }

    /// The poll could not be sent.
    pub fn feed_failed(&mut self) {
        self.feed.in_flight = false;
    }

    /// The feed's answer (`status` is `:status`; a timeout has none): revocations applied to
    /// the ledger. Returns how many were new to this poll.
    pub fn feed_response(&mut self, status: Option<&str>, body: &[u8], now: u64) -> Result<usize, String> {
        self.feed.in_flight = false;
        match status {
            Some("200") => {}
            Some(s) => return Err(format!("the revocation feed answered {s}")),
            None => return Err("the revocation feed did not answer (timeout or no connection)".into()),
        }
        let body = std::str::from_utf8(body).map_err(|_| "the revocation feed's answer is not text".to_string())?;
        let max_age = self.config.revocations.as_ref().map_or(0, |f| f.stale_after_secs);
        let (page, events) = writ_core::feed::verify(body, self.feed.requested_after, now, max_age, &self.crypto)
            .map_err(|e| format!("the revocation feed's answer is refused: {}: {}", e.kind(), e.message()))?;
        if self.feed.epoch.as_deref() != Some(page.epoch.as_str()) && self.feed.requested_after != 0 {
            // The server restarted and numbers from 1 again: read it all from the start.
            self.feed.after = 0;
            self.feed.epoch = Some(page.epoch);
            return Ok(0);
        }
        let n = events.len();
        for event in events {
            self.ledger.apply(event, now);
        }
        self.feed.after = page.next;
        self.feed.epoch = Some(page.epoch);
        self.feed.synced_at = Some(now);
        Ok(n)
    }
}
