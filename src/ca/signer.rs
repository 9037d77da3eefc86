//! CA key holders: an openssl key loaded from an encrypted PKCS#8 file, or a key that stays
//! in a PKCS#11 token. Both sign the DER bytes handed to them and name their algorithm.

use crate::error::{Error, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use der::asn1::Null;
use der::{Any, Decode, Encode};
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private, Public};
use openssl::sha::sha256;
use spki::AlgorithmIdentifierOwned;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// sha256WithRSAEncryption.
pub const SHA256_WITH_RSA: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
/// ecdsa-with-SHA256.
pub const ECDSA_WITH_SHA256: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// Key algorithm of a CA or end-entity key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// RSA-2048 (end entities and issuing CAs).
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA-3072.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    /// RSA-4096 (the root's default).
    #[serde(rename = "rsa-4096")]
    Rsa4096,
    /// ECDSA on P-256.
    #[serde(rename = "ec-p256")]
    EcP256,
}

impl KeyAlgorithm {
    /// RSA modulus bits, if RSA.
    pub fn rsa_bits(self) -> Option<u32> {
        match self {
            KeyAlgorithm::Rsa2048 => Some(2048),
            KeyAlgorithm::Rsa3072 => Some(3072),
            KeyAlgorithm::Rsa4096 => Some(4096),
            KeyAlgorithm::EcP256 => None,
        }
    }

    /// Signature algorithm identifier used with a key of this kind (SHA-256 always).
    pub fn signature_algorithm(self) -> AlgorithmIdentifierOwned {
        match self {
            KeyAlgorithm::EcP256 => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA256,
                parameters: None,
            },
            _ => AlgorithmIdentifierOwned {
                oid: SHA256_WITH_RSA,
                parameters: Some(Any::encode_from(&Null).unwrap_or_else(|_| Any::null())),
            },
        }
    }

    /// Generate a software key of this kind.
    pub fn generate(self) -> Result<PKey<Private>> {
        Ok(match self.rsa_bits() {
            Some(bits) => PKey::from_rsa(openssl::rsa::Rsa::generate(bits)?)?,
            None => {
                let group =
                    openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
                PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?
            }
        })
    }
}

/// Something that signs with a CA key.
pub trait KeySigner: Send + Sync {
    /// Algorithm identifier of the signatures produced.
    fn algorithm(&self) -> AlgorithmIdentifierOwned;
    /// DER SubjectPublicKeyInfo of the key.
    fn public_key_der(&self) -> &[u8];
    /// Sign `msg` (the signer hashes it).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>>;
    /// Where the key lives, for the record (`file:…`, `pkcs11:…`); never secret.
    fn key_ref(&self) -> String;
}

/// A software key held in memory, loaded from an encrypted PKCS#8 PEM file.
pub struct FileSigner {
    key: PKey<Private>,
    alg: KeyAlgorithm,
    spki: Vec<u8>,
    path: String,
}

impl FileSigner {
    /// Wrap a key already in memory.
    pub fn new(key: PKey<Private>, path: impl Into<String>) -> Result<Self> {
        let alg = algorithm_of(&key)?;
        let spki = key.public_key_to_der()?;
        Ok(FileSigner {
            key,
            alg,
            spki,
            path: path.into(),
        })
    }

    /// Write `key` encrypted (PKCS#8, PBES2: PBKDF2-HMAC-SHA256 at
    /// [`crate::ca::keyfile::ITERATIONS`], AES-256-CBC) to `path`, readable only by the owner.
    pub fn save(key: &PKey<Private>, path: &Path, passphrase: &str) -> Result<()> {
        let pem = crate::ca::keyfile::encrypt_pem(key, passphrase, crate::ca::keyfile::ITERATIONS)?;
        write_private(path, &pem)
    }

    /// Load an encrypted key file.
    pub fn load(path: &Path, passphrase: &str) -> Result<Self> {
        let pem = std::fs::read(path)
            .map_err(|e| Error::Config(format!("CA key file {}: {e}", path.display())))?;
        let key = crate::ca::keyfile::decrypt_pem(&pem, passphrase).map_err(|_| {
            Error::Config(format!(
                "cannot decrypt CA key {}: wrong passphrase or damaged file",
                path.display()
            ))
        })?;
        Self::new(key, format!("file:{}", path.display()))
    }
}

/// Write a secret file with mode 0600, refusing to overwrite.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(bytes)?;
    Ok(())
}

fn algorithm_of<T: openssl::pkey::HasPublic>(key: &PKey<T>) -> Result<KeyAlgorithm> {
    match key.id() {
        openssl::pkey::Id::RSA => match key.bits() {
            2048 => Ok(KeyAlgorithm::Rsa2048),
            3072 => Ok(KeyAlgorithm::Rsa3072),
            4096 => Ok(KeyAlgorithm::Rsa4096),
            b => Err(Error::Crypto(format!("unsupported RSA key size {b}"))),
        },
        openssl::pkey::Id::EC => Ok(KeyAlgorithm::EcP256),
        _ => Err(Error::Crypto("unsupported key type".into())),
    }
}

impl KeySigner for FileSigner {
    fn algorithm(&self) -> AlgorithmIdentifierOwned {
        self.alg.signature_algorithm()
    }
    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let mut s = openssl::sign::Signer::new(MessageDigest::sha256(), &self.key)?;
        s.update(msg)?;
        Ok(s.sign_to_vec()?)
    }
    fn key_ref(&self) -> String {
        self.path.clone()
    }
}

/// An open PKCS#11 token: the module, one logged-in session, and the token label.
pub struct Pkcs11Token {
    // Kept so the module stays loaded while sessions live.
    _ctx: Pkcs11,
    session: Mutex<Session>,
    label: String,
}

/// Load a PKCS#11 module and initialise it (once per process; a second load of the same
/// module finds it initialised, which is fine).
pub fn load_module(module: &Path) -> Result<Pkcs11> {
    let ctx = Pkcs11::new(module).map_err(|e| {
        Error::Config(format!(
            "cannot load PKCS#11 module {}: {e}",
            module.display()
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => Ok(ctx),
        Err(e) => Err(Error::Crypto(format!("PKCS#11: {e}"))),
    }
}

/// Templates (public, private) of a token key pair labelled and identified by `label` that
/// signs and does nothing else: the private half sensitive and never extractable.
pub(crate) fn sign_only_templates(label: &str) -> (Vec<Attribute>, Vec<Attribute>) {
    let common = [
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ];
    let mut public = common.to_vec();
    public.extend([
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
    ]);
    let mut private = common.to_vec();
    private.extend([
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]);
    (public, private)
}

impl Pkcs11Token {
    /// Load `module`, find the token labelled `label`, open a read-write session and log in.
    pub fn open(module: &Path, label: &str, pin: &str) -> Result<Arc<Self>> {
        let p11 = |e: cryptoki::error::Error| Error::Crypto(format!("PKCS#11: {e}"));
        let ctx = load_module(module)?;
        let mut found = None;
        for slot in ctx.get_slots_with_initialized_token().map_err(p11)? {
            let info = ctx.get_token_info(slot).map_err(p11)?;
            if info.label().trim_end() == label {
                found = Some(slot);
                break;
            }
        }
        let slot =
            found.ok_or_else(|| Error::Config(format!("no PKCS#11 token labelled {label:?}")))?;
        let session = ctx.open_rw_session(slot).map_err(p11)?;
        match session.login(UserType::User, Some(&AuthPin::from(pin.to_string()))) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(e) => {
                return Err(Error::Config(format!(
                    "PKCS#11 login to {label:?} failed: {e}"
                )));
            }
        }
        Ok(Arc::new(Pkcs11Token {
            _ctx: ctx,
            session: Mutex::new(session),
            label: label.into(),
        }))
    }

    fn with_session<T>(&self, f: impl FnOnce(&Session) -> cryptoki::error::Result<T>) -> Result<T> {
        let s = self
            .session
            .lock()
            .map_err(|_| Error::Internal("PKCS#11 session lock poisoned".into()))?;
        f(&s).map_err(|e| Error::Crypto(format!("PKCS#11: {e}")))
    }

    /// Generate a non-extractable key pair labelled `key_label` on the token.
    pub fn generate(self: &Arc<Self>, key_label: &str, alg: KeyAlgorithm) -> Result<Pkcs11Signer> {
        let id = key_label.as_bytes().to_vec();
        let (mut public, private) = sign_only_templates(key_label);
        let mechanism = match alg.rsa_bits() {
            Some(bits) => {
                public.push(Attribute::ModulusBits(u64::from(bits).into()));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                Mechanism::RsaPkcsKeyPairGen
            }
            None => {
                // DER OID of prime256v1.
                public.push(Attribute::EcParams(vec![
                    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
                ]));
                Mechanism::EccKeyPairGen
            }
        };
        let exists = self.with_session(|s| {
            s.find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(id.clone()),
            ])
        })?;
        if !exists.is_empty() {
            return Err(Error::Duplicate(format!(
                "token {:?} already holds a key labelled {key_label:?}; refusing to overwrite",
                self.label
            )));
        }
        self.with_session(|s| s.generate_key_pair(&mechanism, &public, &private))?;
        self.signer(key_label)
    }

    /// A signer for the existing key pair labelled `key_label`.
    pub fn signer(self: &Arc<Self>, key_label: &str) -> Result<Pkcs11Signer> {
        let id = key_label.as_bytes().to_vec();
        let find = |class| {
            self.with_session(|s| {
                s.find_objects(&[Attribute::Class(class), Attribute::Id(id.clone())])
            })
        };
        let private = find(ObjectClass::PRIVATE_KEY)?
            .first()
            .copied()
            .ok_or_else(|| {
                Error::Config(format!(
                    "no private key {key_label:?} on token {:?}",
                    self.label
                ))
            })?;
        let public = find(ObjectClass::PUBLIC_KEY)?
            .first()
            .copied()
            .ok_or_else(|| {
                Error::Config(format!(
                    "no public key {key_label:?} on token {:?}",
                    self.label
                ))
            })?;
        let (spki, alg) = self.public_key(public)?;
        Ok(Pkcs11Signer {
            token: Arc::clone(self),
            key: private,
            spki,
            alg,
            key_label: key_label.into(),
        })
    }

    fn public_key(&self, handle: ObjectHandle) -> Result<(Vec<u8>, KeyAlgorithm)> {
        let s = self
            .session
            .lock()
            .map_err(|_| Error::Internal("PKCS#11 session lock poisoned".into()))?;
        public_key_of(&s, handle)
    }
}

/// The SubjectPublicKeyInfo (DER) and algorithm of the public key object `handle`.
pub(crate) fn public_key_of(
    session: &Session,
    handle: ObjectHandle,
) -> Result<(Vec<u8>, KeyAlgorithm)> {
    let attrs = session
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
                AttributeType::EcPoint,
            ],
        )
        .map_err(|e| Error::Crypto(format!("PKCS#11: {e}")))?;
    let mut key_type = None;
    let (mut n, mut e, mut point) = (None, None, None);
    for a in attrs {
        match a {
            Attribute::KeyType(k) => key_type = Some(k),
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            _ => {}
        }
    }
    let pkey: PKey<Public> = match (key_type, n, e, point) {
        (Some(KeyType::RSA), Some(n), Some(e), _) => {
            PKey::from_rsa(openssl::rsa::Rsa::from_public_components(
                BigNum::from_slice(&n)?,
                BigNum::from_slice(&e)?,
            )?)?
        }
        (Some(KeyType::EC), _, _, Some(point)) => {
            // CKA_EC_POINT is a DER OCTET STRING around the uncompressed point.
            let raw = der::asn1::OctetString::from_der(&point)?.into_bytes();
            let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
            let mut ctx = openssl::bn::BigNumContext::new()?;
            let p = openssl::ec::EcPoint::from_bytes(&group, &raw, &mut ctx)?;
            PKey::from_ec_key(openssl::ec::EcKey::from_public_key(&group, &p)?)?
        }
        _ => return Err(Error::Crypto("unsupported key type on token".into())),
    };
    Ok((pkey.public_key_to_der()?, algorithm_of(&pkey)?))
}

/// A key pair that lives on a PKCS#11 token.
pub struct Pkcs11Signer {
    token: Arc<Pkcs11Token>,
    key: ObjectHandle,
    spki: Vec<u8>,
    alg: KeyAlgorithm,
    key_label: String,
}

impl KeySigner for Pkcs11Signer {
    fn algorithm(&self) -> AlgorithmIdentifierOwned {
        self.alg.signature_algorithm()
    }
    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        match self.alg {
            KeyAlgorithm::EcP256 => {
                // CKM_ECDSA signs a digest and returns r || s; X.509 wants a DER ECDSA-Sig-Value.
                let digest = sha256(msg);
                let raw = self
                    .token
                    .with_session(|s| s.sign(&Mechanism::Ecdsa, self.key, &digest))?;
                if raw.len() != 64 {
                    return Err(Error::Crypto(format!(
                        "unexpected ECDSA signature length {}",
                        raw.len()
                    )));
                }
                let sig = EcdsaSig::from_private_components(
                    BigNum::from_slice(&raw[..32])?,
                    BigNum::from_slice(&raw[32..])?,
                )?;
                Ok(sig.to_der()?)
            }
            _ => self
                .token
                .with_session(|s| s.sign(&Mechanism::Sha256RsaPkcs, self.key, msg)),
        }
    }
    fn key_ref(&self) -> String {
        format!(
            "pkcs11:token={};object={}",
            self.token.label, self.key_label
        )
    }
}

/// Encode helper used by tests and the CA: DER of any encodable value.
pub fn to_der<T: Encode>(v: &T) -> Result<Vec<u8>> {
    Ok(v.to_der()?)
}
