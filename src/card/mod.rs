//! IC cards: card numbers now; writing keys, certificates and PINs over PKCS#11 follows with
//! the batch runner (issue 4).

pub mod number;
