//! The runtime: traps are contained, instances recycled, the cache used, threads independent.

use writ_tests::NOW;
use writ_tests::pki::{KeyAlg, Pki};

#[test]
fn the_memory_limit_is_a_typed_limit_and_the_next_call_succeeds() {
    let pki = Pki::new("example.org", KeyAlg::P256);
    let chain = pki.chain3("/w", KeyAlg::P256);
    // A small memory limit: a 16 MiB argument cannot even be copied into the guest.
    let writ = writ_host::Writ::builder().memory_limit(8 << 20).time(NOW).build().unwrap();
    writ.set_bundle("example.org", &pki.bundle_pem()).unwrap();
    let huge = "a".repeat(16 << 20);
    let err = writ.attest_jwt(&huge, "writ").unwrap_err();
    assert_eq!(err.kind(), "limit", "{err}");
    assert!(err.to_string().contains("memory limit of 8388608 bytes"), "{err}");
    // The next call gets a fresh instance with the bundle replayed.
    let id = writ.attest_x509(&chain).unwrap();
    assert_eq!(id.spiffe_id, "spiffe://example.org/w");
    // The same through a control call: the bad load is not recorded, the bundle still is.
    let err = writ.set_policies(&huge, None, None).unwrap_err();
    assert_eq!(err.kind(), "limit", "{err}");
    assert_eq!(writ.attest_x509(&chain).unwrap().spiffe_id, "spiffe://example.org/w");
}

/// `n` policies with conditions, as Cedar text.
fn many_policies(n: usize) -> String {
    (0..n)
        .map(|i| format!("@id(\"p{i}\") permit(principal == Agent::\"spiffe://e.org/a{i}\", action == Action::\"read\", resource) when {{ context.task_id == \"t{i}\" }};\n"))
        .collect()
}

#[test]
fn the_cpu_budget_interrupts_runaway_work_and_the_next_call_succeeds() {
    // 20 ms per call: loading 5 000 policies takes far longer inside the component.
    let writ = writ_host::Writ::builder().cpu_limit(std::time::Duration::from_millis(20)).time(NOW).build().unwrap();
    writ.set_policies(r#"@id("small") permit(principal, action == Action::"read", resource);"#, None, None).unwrap();
    let started = std::time::Instant::now();
    let err = writ.set_policies(&many_policies(5_000), None, None).unwrap_err();
    assert_eq!(err.kind(), "limit", "{err}");
    assert!(err.to_string().contains("CPU budget of 20 ms"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "interrupted, not run to the end");
    // The instance was replaced; the small set is still the one in force.
    let who = writ_tests::asserted(&writ, &writ_tests::pack::identity("spiffe://e.org/a1", NOW + 60));
    let what = writ_tests::pack::intent("read", r#"Doc::"d""#, "t1", "");
    assert_eq!(writ.check(&who, &what).unwrap().reasons, vec!["small".to_string()]);
    // With the default budget (2 s) a large load succeeds.
    let roomy = writ_host::Writ::builder().time(NOW).build().unwrap();
    assert_eq!(roomy.set_policies(&many_policies(5_000), None, None), Ok(5_000));
}

#[test]
fn many_threads_authorize_through_one_handle_with_independent_answers() {
    let writ = writ_tests::attester::writ();
    writ.set_time(Some(NOW));
    writ.set_policies(&many_policies(50), None, None).unwrap();
    std::thread::scope(|s| {
        for t in 0..8usize {
            let writ = writ.clone();
            s.spawn(move || {
                for i in 0..60usize {
                    let agent = (t * 7 + i) % 50;
                    let who = writ_tests::pack::identity(&format!("spiffe://e.org/a{agent}"), NOW + 60);
                    let who = writ_tests::asserted(&writ, &who);
                    // Each agent may read only inside its own task.
                    let own = (t + i) % 3 != 0;
                    let task = if own { format!("t{agent}") } else { format!("t{}", (agent + 1) % 50) };
                    let what = writ_tests::pack::intent("read", r#"Doc::"d""#, &task, "");
                    let d = writ.check(&who, &what).unwrap();
                    let want: Vec<String> = if own { vec![format!("p{agent}")] } else { Vec::new() };
                    assert_eq!((d.allow, d.reasons), (own, want), "thread {t} call {i}");
                }
            });
        }
    });
}

#[test]
fn the_precompiled_cache_is_written_then_used() {
    use sha2::{Digest as _, Sha256};
    let dir = std::env::temp_dir().join(format!("writ-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Compiling the component unoptimized takes seconds: start from the copy every other test
    // shares (in the default cache directory), so this test compiles once, after corrupting it.
    let _shared = writ_tests::attester::writ();
    let component_hash: String =
        Sha256::digest(writ_host::COMPONENT)[..16].iter().map(|b| format!("{b:02x}")).collect();
    let mut seeded = false;
    if let Some(shared_dir) = writ_host::default_cache_dir() {
        for entry in std::fs::read_dir(shared_dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(&component_hash) && (name.ends_with(".cwasm") || name.ends_with(".sha256")) {
                std::fs::copy(&path, dir.join(&name)).unwrap();
                seeded |= name.ends_with(".cwasm");
            }
        }
    }
    if !seeded {
        // No shared cache (no HOME): this build compiles and writes the file.
        let first = writ_host::Writ::builder().cache_dir(&dir).build().unwrap();
        assert_eq!(first.cache_source(), writ_host::CacheSource::Compiled);
    }
    let second = writ_host::Writ::builder().cache_dir(&dir).build().unwrap();
    assert_eq!(second.cache_source(), writ_host::CacheSource::Cached);
    // A corrupted cache file is detected and recompiled, not loaded.
    let mut corrupted = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "cwasm") {
            let mut bytes = std::fs::read(&p).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&p, bytes).unwrap();
            corrupted += 1;
        }
    }
    assert_eq!(corrupted, 1);
    let third = writ_host::Writ::builder().cache_dir(&dir).build().unwrap();
    assert_eq!(third.cache_source(), writ_host::CacheSource::Compiled);
    third.set_time(Some(NOW));
    assert!(third.jwks().is_ok());
    // ...and the recompiled component was written back: the next build loads it.
    let fourth = writ_host::Writ::builder().cache_dir(&dir).build().unwrap();
    assert_eq!(fourth.cache_source(), writ_host::CacheSource::Cached);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn many_threads_get_correct_independent_answers() {
    let a = Pki::new("a.org", KeyAlg::P256);
    let b = Pki::new("b.org", KeyAlg::Ed25519);
    let writ = writ_tests::attester::writ();
    writ.set_time(Some(NOW));
    writ.set_bundle("a.org", &a.bundle_pem()).unwrap();
    writ.set_bundle("b.org", &b.bundle_pem()).unwrap();
    let chains =
        [(a.chain3("/x", KeyAlg::P256), "spiffe://a.org/x"), (b.chain3("/y", KeyAlg::Ed25519), "spiffe://b.org/y")];
    std::thread::scope(|s| {
        for t in 0..8 {
            let writ = writ.clone();
            let chains = &chains;
            s.spawn(move || {
                for i in 0..20 {
                    let (chain, id) = &chains[(t + i) % 2];
                    assert_eq!(writ.attest_x509(chain).unwrap().spiffe_id, *id);
                    let mut bad = chain.clone();
                    let last = bad[0].len() - 1;
                    bad[0][last] ^= 1;
                    assert_eq!(writ.attest_x509(&bad).unwrap_err().kind(), "untrusted");
                }
            });
        }
    });
}

#[test]
fn audit_events_reach_the_callback() {
    let (writ, events) = writ_tests::attester::audited_writ(NOW);
    let pki = Pki::new("example.org", KeyAlg::P256);
    writ.set_bundle("example.org", &pki.bundle_pem()).unwrap();
    writ.attest_x509(&pki.chain3("/w", KeyAlg::P256)).unwrap();
    let _ = writ.attest_x509(&[b"junk".to_vec()]);
    let ev = events.lock().unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (ev[0].kind.as_str(), ev[0].allow, ev[0].spiffe_id.as_deref()),
        ("attest", true, Some("spiffe://example.org/w"))
    );
    assert_eq!(ev[0].time, NOW);
    assert!(!ev[1].allow);
    assert!(ev[1].reasons[0].starts_with("malformed"), "{:?}", ev[1].reasons);
}
