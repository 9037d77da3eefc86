//! What each `kofu` subcommand does (main.rs only parses and dispatches).

use crate::app::AppState;
use crate::audit::{self, Actor};
use crate::ca::config::CaConfig;
use crate::ca::csr;
use crate::ca::profile::{CaName, Profile};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, KeyBackend};
use crate::db::models::user::User;
use crate::db::{self, DbPool};
use crate::error::{Error, Result};
use crate::service::issuance::{self, IssueRequest};
use crate::service::users::{self, Role};
use crate::service::{auth, ca as ca_service};
use std::path::Path;
use std::sync::Arc;

pub mod user;
pub mod verifier;

/// Open the database and apply pending migrations.
pub fn open(cfg: &Config) -> Result<DbPool> {
    let pool = db::pool(&cfg.database_url(), cfg.pool_size)?;
    let mut conn = pool.get()?;
    db::migrate(&mut conn)?;
    Ok(pool)
}

/// `kofu migrate`.
pub fn migrate(cfg: &Config) -> Result<()> {
    let pool = db::pool(&cfg.database_url(), 1)?;
    let n = db::migrate(&mut *pool.get()?)?;
    println!("{n} migration(s) applied");
    Ok(())
}

/// `kofu ca init`.
pub fn ca_init(cfg: &Config) -> Result<()> {
    let ca_cfg = CaConfig::load(&cfg.ca_config)?;
    let pool = open(cfg)?;
    let files = ca_service::init(
        &mut *pool.get()?,
        cfg,
        &ca_cfg,
        &Actor::cli(),
        SystemClock.now(),
    )?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}

/// `kofu ca rewrap-keys`: prints each key file written again.
pub fn ca_rewrap_keys(cfg: &Config) -> Result<()> {
    let pool = open(cfg)?;
    let files = ca_service::rewrap_keys(&mut *pool.get()?, cfg, &Actor::cli(), SystemClock.now())?;
    for f in files {
        println!("re-wrapped {}", f.display());
    }
    Ok(())
}

fn read_file(path: &Path, field: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    const LIMIT: u64 = 1024 * 1024;
    let cannot =
        |e: std::io::Error| Error::bad(field, format!("cannot read {}: {e}", path.display()));
    // Read at most one byte past the limit: a device or pipe (`/dev/zero`) has no length to
    // check beforehand.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > LIMIT {
        return Err(Error::bad(
            field,
            format!("{} is larger than 1 MiB", path.display()),
        ));
    }
    Ok(bytes)
}

/// `kofu ca issue`: an infrastructure certificate, printed as PEM. Every input is checked
/// before anything is stored; holder profiles are refused (issuance refuses them too).
pub fn ca_issue(cfg: &Config, profile: &str, csr_path: &Path, ca: Option<&str>) -> Result<()> {
    let profile = Profile::parse(profile)?;
    let ca = ca.map(CaName::parse).transpose()?;
    profile.issuer(ca)?;
    if profile.is_holder() {
        return Err(issuance::holder_refusal(profile));
    }
    let csr = csr::check(&read_file(csr_path, "csr")?)?;
    let pool = open(cfg)?;
    let mut conn = pool.get()?;
    let h = ca_service::load(&mut conn, cfg, CaConfig::load(&cfg.ca_config)?)?;
    let req = IssueRequest {
        profile,
        ca,
        csr,
        identity: None,
    };
    let issued = issuance::issue(
        &mut conn,
        &h,
        &req,
        &Actor::cli(),
        cfg.instance_prefix,
        SystemClock.now(),
    )?;
    print!("{}", crate::ca::der_to_pem(&issued.der)?);
    Ok(())
}

/// What card work from the command line needs: the database, the CA and the data key.
fn card_work(cfg: &Config) -> Result<crate::service::batches::CardWork> {
    let key = cfg.require_data_key()?;
    let pool = open(cfg)?;
    let h = ca_service::load(&mut *pool.get()?, cfg, CaConfig::load(&cfg.ca_config)?)?;
    Ok(crate::service::batches::CardWork {
        db: pool,
        ca: Arc::new(h),
        key,
        config: Arc::new(cfg.clone()),
        clock: Arc::new(SystemClock),
    })
}

/// `kofu batch run ID`: writes the batch's cards with a progress bar; a rerun resumes.
pub fn batch_run(cfg: &Config, id: i64) -> Result<()> {
    let work = card_work(cfg)?;
    let readers = crate::card::readers::Readers::open(&cfg.cards.module)?;
    let lease = work.claim(id)?;
    let runner = work.runner(&readers, cfg.cards.keygen()?, Actor::cli(), &lease);
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} batch {msg} [{bar:40}] {pos}/{len} cards ({per_sec}, {eta} left)",
        )
        .map_err(|e| Error::Internal(format!("progress template: {e}")))?
        .progress_chars("=> "),
    );
    bar.set_message(id.to_string());
    let summary = runner.run(id, &|p| {
        bar.set_length(p.total as u64);
        bar.set_position(p.written as u64);
    })?;
    bar.finish_and_clear();
    println!(
        "batch {}: {} of {} cards written",
        summary.reference, summary.written, summary.total
    );
    if summary.failed.is_empty() {
        Ok(())
    } else {
        for (app, why) in &summary.failed {
            eprintln!("application {app}: {why}");
        }
        Err(Error::Unavailable(format!(
            "{} card(s) not written; fix the cause and run `kofu batch run {id}` again",
            summary.failed.len()
        )))
    }
}

/// `kofu card renew NUMBER`: the PIN comes from standard input (the counter's PIN pad).
pub fn card_renew(cfg: &Config, number: &str) -> Result<()> {
    let number = crate::card::number::parse(number)?;
    let work = card_work(cfg)?;
    let readers = crate::card::readers::Readers::open(&cfg.cards.module)?;
    let keygen = cfg.cards.keygen()?;
    eprint!("PIN of card {number}: ");
    let mut pin = String::new();
    std::io::stdin().read_line(&mut pin)?;
    let renewal = crate::service::renewal::Renewal::of(&work, &readers, keygen, Actor::cli());
    let r = renewal.renew(&number, pin.trim(), SystemClock.now())?;
    println!(
        "card {}: new signing certificate {} (replaces {}: {})",
        r.card_number,
        r.new_serial,
        r.old_serial.as_deref().unwrap_or("none"),
        r.old_reason.unwrap_or("-")
    );
    Ok(())
}

/// `kofu crl publish`: a full and a delta CRL for every issuing CA (and shard) now.
pub fn crl_publish(cfg: &Config, delta_only: bool) -> Result<()> {
    let db = crate::db::Db::open(&cfg.database_url(), cfg.pool_size)?;
    let h = ca_service::load(&mut *db.read.get()?, cfg, CaConfig::load(&cfg.ca_config)?)?;
    let published =
        crate::service::crl::publish_all(&db, &h, delta_only, &Actor::cli(), SystemClock.now())?;
    for p in published {
        println!(
            "{}: CRL number {}, {} entries, {} bytes",
            crate::service::crl::file_name(p.ca, p.shard, p.kind),
            p.number,
            p.entries,
            p.bytes
        );
    }
    Ok(())
}

/// `kofu batch show ID`.
pub fn batch_show(cfg: &Config, id: i64) -> Result<()> {
    let pool = open(cfg)?;
    let mut conn = pool.get()?;
    let (batch, _) = crate::service::orders::show(&mut conn, id)?;
    println!(
        "batch {} ({}): {} applications",
        batch.reference, batch.state, batch.application_count
    );
    if let Some(b) = crate::service::lease::holder_of(
        &mut conn,
        &crate::service::batches::lease_name(id),
        SystemClock.now().timestamp(),
    )? {
        println!(
            "being run on instance {} (lease until {} JST)",
            b.instance,
            crate::jp::time::written(b.expires_at)
        );
    }
    for card in crate::service::batches::cards(&mut conn, id)? {
        println!(
            "{}  {}",
            crate::card::number::display(&card.card_number),
            card.state
        );
    }
    let set_aside = crate::service::card_stack::for_batch(&mut conn, id)?;
    if !set_aside.is_empty() {
        println!("set aside (pull these cards from the stack):");
        for t in set_aside {
            println!(
                "  chip {}  label {}  {}  {} JST  {}",
                if t.chip_serial.is_empty() {
                    "-"
                } else {
                    &t.chip_serial
                },
                if t.token_label.is_empty() {
                    "-"
                } else {
                    &t.token_label
                },
                t.reason,
                crate::jp::time::written(t.created_at),
                t.detail
            );
        }
    }
    Ok(())
}

/// What the registry commands need: the data key, the open file, a migrated database.
fn registry_input(
    cfg: &Config,
    file: &Path,
) -> Result<(
    crate::pii::DataKey,
    std::io::BufReader<std::fs::File>,
    DbPool,
)> {
    let key = cfg.require_data_key()?;
    let f = std::fs::File::open(file)
        .map_err(|e| Error::bad("file", format!("cannot read {}: {e}", file.display())))?;
    Ok((key, std::io::BufReader::with_capacity(1 << 20, f), {
        // One connection: a bulk import may then switch SQLite to its rollback journal.
        let pool = db::pool(&cfg.database_url(), 1)?;
        db::migrate(&mut *pool.get()?)?;
        pool
    }))
}

/// `kofu registry import FILE`: all-or-nothing, every bad line reported.
pub fn registry_import(cfg: &Config, file: &Path) -> Result<()> {
    let (key, input, pool) = registry_input(cfg, file)?;
    let started = std::time::Instant::now();
    let s = crate::registry::extract::import_extract(
        &mut *pool.get()?,
        &key,
        input,
        &Actor::cli(),
        SystemClock.now(),
    )?;
    println!(
        "imported {} residents in {:.1} s",
        s.rows,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `kofu registry changes FILE`: applies each event once.
pub fn registry_changes(cfg: &Config, file: &Path) -> Result<()> {
    let (key, input, pool) = registry_input(cfg, file)?;
    let s = crate::registry::extract::apply_changes(
        &mut *pool.get()?,
        &key,
        input,
        &Actor::cli(),
        SystemClock.now(),
    )?;
    println!(
        "applied {} change events ({} already applied before)",
        s.applied, s.already_applied
    );
    let acted = crate::service::revocation::process_registry_events(
        &mut *pool.get()?,
        &key,
        &Actor::cli(),
        SystemClock.now(),
    )?;
    println!(
        "revocation: {} events looked at, {} cards changed, {} renewal applications opened",
        acted.events, acted.cards, acted.follow_ups
    );
    Ok(())
}

/// `kofu audit verify`: non-zero exit naming the first broken entry.
pub fn audit_verify(cfg: &Config) -> Result<()> {
    let pool = open(cfg)?;
    let v = audit::verify(&mut *pool.get()?)?;
    println!("audit chain intact: {} entries", v.entries);
    Ok(())
}

/// First start: create the CA (with a generated passphrase file if none is configured and
/// keys are files) and a first administrator, printing the one-time password.
fn bootstrap(cfg: &mut Config, pool: &DbPool) -> Result<()> {
    let mut conn = pool.get()?;
    let generated = cfg.generated_ca_passphrase_file();
    if cfg.ca_key_backend == KeyBackend::File && cfg.ca_passphrase()?.is_none() {
        if !generated.exists() {
            std::fs::create_dir_all(&cfg.data_dir)?;
            crate::ca::signer::write_private(&generated, auth::random_secret()?.as_bytes())?;
            println!(
                "generated a CA key passphrase in {} (for production, keep it elsewhere and set ca_passphrase_file)",
                generated.display()
            );
        }
        cfg.ca_passphrase_file = Some(generated);
    }
    if cfg.data_key()?.is_none() {
        let generated = cfg.generated_data_key_file();
        if !generated.exists() {
            std::fs::create_dir_all(&cfg.data_dir)?;
            crate::ca::signer::write_private(
                &generated,
                crate::pii::DataKey::generate_hex()?.as_bytes(),
            )?;
            println!(
                "generated a personal-data key in {} (for production, keep it elsewhere and set data_key_file)",
                generated.display()
            );
        }
        cfg.data_key_file = Some(generated);
    }
    if !ca_service::exists(&mut conn, cfg)? {
        let ca_cfg = CaConfig::load(&cfg.ca_config)?;
        let files = ca_service::init(&mut conn, cfg, &ca_cfg, &Actor::system(), SystemClock.now())?;
        println!(
            "created the CA hierarchy: {}",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if User::count(&mut conn)? == 0 {
        let (user, otp) = users::add(
            &mut conn,
            "admin",
            Role::Admin,
            None,
            &Actor::system(),
            SystemClock.now(),
        )?;
        println!(
            "created the first administrator: username {} one-time password {otp}",
            user.username
        );
    }
    if cfg.demo_data && crate::registry::extract::resident_count(&mut conn)? == 0 {
        let key = cfg.require_data_key()?;
        let s = crate::registry::extract::import_extract(
            &mut conn,
            &key,
            crate::registry::extract::DEMO_EXTRACT.as_bytes(),
            &Actor::system(),
            SystemClock.now(),
        )?;
        println!(
            "loaded the synthetic demo registry extract: {} invented residents of 131016 and 271004",
            s.rows
        );
    }
    Ok(())
}

/// `kofu mail deliver`: one delivery round now.
pub fn mail_deliver(cfg: &Config) -> Result<()> {
    let key = cfg.require_data_key()?;
    let pool = open(cfg)?;
    let mailer = crate::mail::Mailer::from_config(&cfg.mail, cfg.delivery.office())?
        .ok_or_else(|| Error::Config("no mail.host configured (KOFU_SMTP_HOST)".into()))?;
    let round = crate::mail::deliver_due(&pool, &key, &mailer, SystemClock.now())?;
    let left = crate::mail::pending(&mut *pool.get()?)?;
    println!(
        "{} sent, {} deferred, {left} waiting",
        round.sent, round.deferred
    );
    Ok(())
}

/// `kofu serve`.
pub fn serve(mut cfg: Config, listen: Option<String>) -> Result<()> {
    if let Some(l) = listen {
        cfg.listen = l;
    }
    let db = crate::db::Db::open(&cfg.database_url(), cfg.pool_size)?;
    bootstrap(&mut cfg, &db.read)?;
    crate::config::files::warn_if_open(&cfg);
    let hierarchy = ca_service::load(&mut *db.read.get()?, &cfg, CaConfig::load(&cfg.ca_config)?)?;
    let hierarchy = Arc::new(hierarchy);
    let key = cfg.require_data_key()?;
    let sealed = crate::service::cert_store::seal_stored(&mut *db.write.get()?, &key)?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "signing certificates stored in clear before are sealed now"
        );
    }
    let registry = crate::registry::from_config(&cfg, key.clone())?;
    let ocsp = Arc::new(crate::service::ocsp::OcspService::start(
        &mut *db.write.get()?,
        &cfg,
        &hierarchy,
        SystemClock.now(),
    )?);
    let state = AppState::new(db, cfg.clone(), Arc::new(SystemClock))
        .with_data_key(key, Arc::from(registry))
        .with_ca(Arc::clone(&hierarchy), ocsp);
    let (traffic, refusals, duties, db) = (
        state.traffic.clone(),
        state.refusals.clone(),
        state.duties.clone(),
        state.db.clone(),
    );
    crate::app::workers::start_mail(&state)?;
    crate::app::workers::start_revocation(&state)?;
    let tls = match &cfg.tls_listen {
        Some(addr) => {
            let (key, cert) = crate::service::tls_server::server_certificate(
                &mut *state.db.write.get()?,
                &cfg,
                &hierarchy,
                SystemClock.now(),
            )?;
            Some((
                addr.clone(),
                crate::http::tls::acceptor(&hierarchy, &key, &cert)?,
            ))
        }
        None => None,
    };
    let listen = cfg.listen.clone();
    tracing::info!(%listen, "kofu listening");
    println!("kofu listening on http://{listen}/");
    actix_web::rt::System::new().block_on(async move {
        let mut server = actix_web::HttpServer::new(move || crate::http::app(state.clone()))
            .on_connect(crate::http::tls::on_connect)
            .bind(&listen)
            .map_err(|e| Error::Config(format!("cannot listen on {listen}: {e}")))?;
        if let Some((addr, acceptor)) = tls {
            server = server
                .bind_openssl(&addr, acceptor)
                .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
            tracing::info!(%addr, "kofu listening with TLS");
            println!("kofu listening on https://{addr}/ (TLS, client certificates for verifiers)");
        }
        server.run().await.map_err(Error::from)
    })?;
    // Stopped (SIGTERM, SIGINT): another instance takes the duties over at once, and what
    // was counted since the last flush is audited before the process ends.
    duties.release(&mut *db.write.get()?)?;
    traffic.flush(&mut *db.write.get()?, SystemClock.now())?;
    refusals.flush(&mut *db.write.get()?, SystemClock.now().timestamp())?;
    Ok(())
}
