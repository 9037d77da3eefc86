//! The background workers of `kofu serve`: the mail queue and the revocation round (CRLs,
//! the registry feed, the card-stack sweep, OCSP, counted traffic). They take time from the
//! state's clock and do the instance duties only while this instance holds them.

use crate::app::AppState;
use crate::error::{Error, Result};
use std::sync::Arc;

/// Send queued e-mail every `mail.poll_s` seconds while this instance holds the duties.
pub fn start_mail(state: &AppState) -> Result<()> {
    let cfg = &state.config;
    let Some(mailer) = crate::mail::Mailer::from_config(&cfg.mail, cfg.delivery.office())? else {
        tracing::warn!("no mail.host configured: e-mail notices stay queued");
        return Ok(());
    };
    let (pool, key, every, duties, clock) = (
        state.db.write.clone(),
        state.data_key()?,
        std::time::Duration::from_secs(cfg.mail.poll_s.max(1)),
        state.duties.clone(),
        state.clock.clone(),
    );
    std::thread::Builder::new()
        .name("mail".into())
        .spawn(move || {
            loop {
                if duties.held()
                    && let Err(e) = crate::mail::deliver_due(&pool, &key, &mailer, clock.now())
                {
                    tracing::warn!(error = %e, "mail round failed");
                }
                std::thread::sleep(every);
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start the mail worker: {e}")))?;
    Ok(())
}

/// The background worker, once a second. On the instance holding the duties
/// (`service::duties`): the CRL schedule (full CRLs before they go stale, delta CRLs shortly
/// after revocations); every ten seconds the registry change feed, the sweep of
/// certificates on spoiled cards and old idempotency keys. On every instance: OCSP responses
/// of changed certificates signed again at once and cached ones refreshed every minute;
/// every minute the verifiers' counted requests and counted refusals audited; every hour
/// responder certificates renewed when close to expiry.
pub fn start_revocation(state: &AppState) -> Result<()> {
    let (traffic, refusals, duties, clock) = (
        state.traffic.clone(),
        state.refusals.clone(),
        state.duties.clone(),
        state.clock.clone(),
    );
    let (db, h, ocsp, cfg, key) = (
        state.db.clone(),
        state.hierarchy()?,
        state
            .ocsp
            .clone()
            .ok_or_else(|| Error::Internal("OCSP responder not started".into()))?,
        Arc::clone(&state.config),
        state.data_key()?,
    );
    std::thread::Builder::new()
        .name("revocation".into())
        .spawn(move || {
            let mut pending = crate::service::crl::Pending::new();
            let actor = crate::audit::Actor::system();
            for tick in 0u64.. {
                let now = clock.now();
                // Each step takes a connection only for itself: on SQLite the write pool
                // has one, which the batch runner and the web handlers need too. Reading
                // and re-signing OCSP responses use read connections.
                let mut round = || -> Result<()> {
                    let held = duties.tick(&mut *db.write.get()?, now.timestamp())?;
                    if held && tick % 10 == 0 {
                        crate::service::revocation::process_registry_events(
                            &mut *db.write.get()?,
                            &key,
                            &actor,
                            now,
                        )?;
                        crate::service::card_stack::sweep(&mut *db.write.get()?, &actor, now)?;
                        crate::service::idempotency::forget_old(&mut *db.write.get()?, now)?;
                    }
                    if held {
                        crate::service::crl::run_due(&db, &h, &mut pending, now)?;
                    }
                    ocsp.poll(&mut *db.read.get()?, now)?;
                    if tick % 60 == 0 {
                        ocsp.refresh(&mut *db.read.get()?, now)?;
                    }
                    if tick % 60 == 30 {
                        traffic.flush(&mut *db.write.get()?, now)?;
                        refusals.flush(&mut *db.write.get()?, now.timestamp())?;
                    }
                    if tick % 3600 == 3599 {
                        ocsp.renew_responders(&mut *db.write.get()?, &cfg, &h, now)?;
                    }
                    Ok(())
                };
                if let Err(e) = round() {
                    tracing::warn!(error = %e, "revocation round failed");
                }
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start the revocation worker: {e}")))?;
    Ok(())
}
