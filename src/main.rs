//! The `kofu` command: parsing and dispatch only; the work is in `kofu::cli`.

use clap::{Parser, Subcommand};
use kofu::cli;
use kofu::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kofu",
    version,
    about = "社会保障カード発行管理 — CA and IC-card issuance back office"
)]
struct Cli {
    /// Configuration file (default: $KOFU_CONFIG, or ./kofu.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (creates the CA and a first admin on first start).
    Serve {
        /// Listen address, overriding configuration.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Apply database migrations.
    Migrate,
    /// Certificate authority.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Staff users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The resident registry: extracts and change feeds a municipality imports.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Outgoing e-mail.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Issuance batches (発券): writing the cards of an issuance order.
    Batch {
        #[command(subcommand)]
        command: BatchCommand,
    },
    /// A holder's card at the counter.
    Card {
        #[command(subcommand)]
        command: CardCommand,
    },
    /// Certificate revocation lists.
    Crl {
        #[command(subcommand)]
        command: CrlCommand,
    },
    /// Verifiers (relying parties): registration and credentials.
    Verifier {
        #[command(subcommand)]
        command: VerifierCommand,
    },
}

#[derive(Subcommand)]
enum VerifierCommand {
    /// Register a verifier.
    Add {
        /// Name (unique).
        name: String,
        /// Contact of the verifier's office.
        #[arg(long)]
        contact: String,
        /// CAs whose data it may use: signing, authentication, infrastructure (comma-separated).
        #[arg(long, default_value = "signing")]
        cas: String,
        /// Requests per minute.
        #[arg(long, default_value_t = kofu::service::verifiers::DEFAULT_RATE_LIMIT)]
        rate_limit: i64,
    },
    /// List verifiers and their credentials.
    List,
    /// Suspend a verifier: its requests are refused from the next one on.
    Suspend {
        /// Name or id.
        verifier: String,
    },
    /// Reactivate a suspended verifier.
    Activate {
        /// Name or id.
        verifier: String,
    },
    /// Give a verifier an API token; prints it once.
    Token {
        /// Name or id.
        verifier: String,
        /// What the token is for.
        #[arg(long, default_value = "api")]
        label: String,
    },
    /// Give a verifier a client certificate for mutual TLS from its CSR; prints the PEM.
    Certificate {
        /// Name or id.
        verifier: String,
        /// The CSR (PEM or DER).
        #[arg(long)]
        csr: PathBuf,
        /// What the certificate is for.
        #[arg(long, default_value = "mtls")]
        label: String,
    },
    /// Revoke a credential (token or client certificate) of a verifier.
    Revoke {
        /// Name or id.
        verifier: String,
        /// Credential id (see `kofu verifier list`).
        credential: i64,
    },
}

#[derive(Subcommand)]
enum CardCommand {
    /// Renew the signing certificate on the holder's card (a verified renewal application):
    /// a new key pair on the card, a new certificate, the old one superseded. The holder
    /// types the card's PIN on standard input.
    Renew {
        /// Card number.
        number: String,
    },
}

#[derive(Subcommand)]
enum CrlCommand {
    /// Sign and store a full and a delta CRL for every issuing CA now (`kofu serve` does
    /// this on its schedule and shortly after revocations).
    Publish {
        /// Only delta CRLs on the current full CRLs.
        #[arg(long)]
        delta: bool,
    },
}

#[derive(Subcommand)]
enum MailCommand {
    /// Send the queued notices that are due, once (`kofu serve` does this continuously).
    Deliver,
}

#[derive(Subcommand)]
enum BatchCommand {
    /// Write every card of batch ID not yet written (resumes an interrupted run).
    Run {
        /// The batch id (from the issuance order).
        id: i64,
    },
    /// The batch's cards and how far each got.
    Show {
        /// The batch id.
        id: i64,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create the hierarchy from ca-config (refuses to overwrite an existing CA).
    Init,
    /// Issue an infrastructure certificate from a CSR; prints the PEM certificate. Holder
    /// certificates are never issued from a request (only by `kofu batch run` and renewal).
    Issue {
        /// Profile: ocsp, verifier-client, tls-server.
        #[arg(long)]
        profile: String,
        /// The CSR (PEM or DER).
        #[arg(long)]
        csr: PathBuf,
        /// Issuing CA, for OCSP responder certificates (signing, authentication, infrastructure).
        #[arg(long)]
        ca: Option<String>,
    },
    /// Write every encrypted key file under the CA directory again at the current work
    /// factor (PBKDF2-HMAC-SHA256, 600,000 iterations), same passphrase; atomic per file.
    RewrapKeys,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a staff user; prints a one-time password.
    Add {
        /// office, clerk, operator, callcenter, auditor or admin.
        #[arg(long)]
        role: String,
        /// Municipality code (clerks).
        #[arg(long)]
        municipality: Option<String>,
        /// Login name.
        name: String,
    },
    /// Set a user's password, read from standard input.
    Password {
        /// Login name.
        name: String,
    },
    /// Create an API bearer token for a user; prints it once.
    Token {
        /// Login name.
        name: String,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        label: String,
        /// Days it lasts (default auth.token_days).
        #[arg(long)]
        days: Option<i64>,
    },
    /// List accounts: role, municipality, active or disabled, last login, live tokens.
    List,
    /// Disable an account: its sessions end and its tokens are revoked at once.
    Disable {
        /// Login name.
        name: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// Login name.
        name: String,
    },
    /// Reset an account's password to a one-time password (printed once).
    ResetPassword {
        /// Login name.
        name: String,
    },
    /// An account's API tokens (label, created, last used, expiry; never the secret).
    Tokens {
        /// Login name.
        name: String,
    },
    /// Revoke one of an account's API tokens.
    RevokeToken {
        /// Login name.
        name: String,
        /// Token id (from `kofu user tokens`).
        id: i64,
    },
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Import a registry extract (CSV); all-or-nothing, every bad line reported.
    Import {
        /// The CSV file (columns: resident_code, municipality_code, name, name_kana,
        /// birth_date, sex, address, postal_code, status).
        file: PathBuf,
    },
    /// Apply a change feed (異動: moves, name changes, deaths, corrections); each event once.
    Changes {
        /// The CSV file (columns: event_id, municipality_code, resident_code, kind,
        /// effective_date, name, name_kana, birth_date, sex, address, postal_code).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chain; exits non-zero naming the first broken entry.
    Verify,
}

fn main() -> ExitCode {
    kofu::config::files::private_umask();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KOFU_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Cli::parse();
    let result = Config::load(args.config.as_deref()).and_then(|cfg| match args.command {
        Command::Serve { listen } => cli::serve(cfg, listen),
        Command::Verifier { command } => match command {
            VerifierCommand::Add {
                name,
                contact,
                cas,
                rate_limit,
            } => cli::verifier::add(&cfg, &name, &contact, &cas, rate_limit),
            VerifierCommand::List => cli::verifier::list(&cfg),
            VerifierCommand::Suspend { verifier } => {
                cli::verifier::set_active(&cfg, &verifier, false)
            }
            VerifierCommand::Activate { verifier } => {
                cli::verifier::set_active(&cfg, &verifier, true)
            }
            VerifierCommand::Token { verifier, label } => {
                cli::verifier::token(&cfg, &verifier, &label)
            }
            VerifierCommand::Certificate {
                verifier,
                csr,
                label,
            } => cli::verifier::certificate(&cfg, &verifier, &csr, &label),
            VerifierCommand::Revoke {
                verifier,
                credential,
            } => cli::verifier::revoke(&cfg, &verifier, credential),
        },
        Command::Migrate => cli::migrate(&cfg),
        Command::Ca {
            command: CaCommand::Init,
        } => cli::ca_init(&cfg),
        Command::Ca {
            command: CaCommand::Issue { profile, csr, ca },
        } => cli::ca_issue(&cfg, &profile, &csr, ca.as_deref()),
        Command::Ca {
            command: CaCommand::RewrapKeys,
        } => cli::ca_rewrap_keys(&cfg),
        Command::User {
            command:
                UserCommand::Add {
                    role,
                    municipality,
                    name,
                },
        } => cli::user::add(&cfg, &role, municipality.as_deref(), &name),
        Command::User {
            command: UserCommand::Token { name, label, days },
        } => cli::user::token(&cfg, &name, &label, days),
        Command::User {
            command: UserCommand::Password { name },
        } => cli::user::password(&cfg, &name),
        Command::User {
            command: UserCommand::List,
        } => cli::user::list(&cfg),
        Command::User {
            command: UserCommand::Disable { name },
        } => cli::user::set_disabled(&cfg, &name, true),
        Command::User {
            command: UserCommand::Enable { name },
        } => cli::user::set_disabled(&cfg, &name, false),
        Command::User {
            command: UserCommand::ResetPassword { name },
        } => cli::user::reset_password(&cfg, &name),
        Command::User {
            command: UserCommand::Tokens { name },
        } => cli::user::tokens(&cfg, &name),
        Command::User {
            command: UserCommand::RevokeToken { name, id },
        } => cli::user::revoke_token(&cfg, &name, id),
        Command::Registry {
            command: RegistryCommand::Import { file },
        } => cli::registry_import(&cfg, &file),
        Command::Registry {
            command: RegistryCommand::Changes { file },
        } => cli::registry_changes(&cfg, &file),
        Command::Audit {
            command: AuditCommand::Verify,
        } => cli::audit_verify(&cfg),
        Command::Mail {
            command: MailCommand::Deliver,
        } => cli::mail_deliver(&cfg),
        Command::Batch {
            command: BatchCommand::Run { id },
        } => cli::batch_run(&cfg, id),
        Command::Batch {
            command: BatchCommand::Show { id },
        } => cli::batch_show(&cfg, id),
        Command::Card {
            command: CardCommand::Renew { number },
        } => cli::card_renew(&cfg, &number),
        Command::Crl {
            command: CrlCommand::Publish { delta },
        } => cli::crl_publish(&cfg, delta),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(kofu::error::Error::Invalid(list)) => {
            // Every wrong line or field, one per line (an import may name thousands).
            eprintln!(
                "error [KF0400]: {} wrong line(s) or field(s); nothing was changed",
                list.len()
            );
            for e in &list {
                match e.line {
                    Some(l) => eprintln!("  line {l}, {}: {}", e.field, e.message),
                    None => eprintln!("  {}: {}", e.field, e.message),
                }
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            ExitCode::FAILURE
        }
    }
}
