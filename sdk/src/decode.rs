//! Decoders for fetched account bytes. They check the Anchor discriminator and
//! the exact length, then copy out the Pod struct (fetched buffers carry no
//! alignment guarantee, so no in-place cast).
use anchor_lang::{Discriminator, ZeroCopy};
use kestrel::state::{Exchange, MarginAccount, Market, Underlying};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    WrongDiscriminator {
        account_type: &'static str,
    },
    WrongLength {
        account_type: &'static str,
        expected: usize,
        actual: usize,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WrongDiscriminator { account_type } => {
                write!(
                    f,
                    "account is not a Kestrel {account_type} (discriminator mismatch)"
                )
            }
            Self::WrongLength {
                account_type,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "{account_type} account is {actual} bytes, expected {expected}"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}

pub fn zero_copy<T: ZeroCopy + Discriminator>(
    account_type: &'static str,
    data: &[u8],
) -> Result<T, DecodeError> {
    let disc = T::DISCRIMINATOR;
    let expected = disc.len() + std::mem::size_of::<T>();
    if data.len() != expected {
        return Err(DecodeError::WrongLength {
            account_type,
            expected,
            actual: data.len(),
        });
    }
    if &data[..disc.len()] != disc {
        return Err(DecodeError::WrongDiscriminator { account_type });
    }
    Ok(bytemuck::pod_read_unaligned(&data[disc.len()..]))
}

/// The engine slab of a book-side or event-queue account: discriminator and
/// exact length checked, copied into 8-byte-aligned words (fetched buffers
/// carry no alignment, and the engine's nodes need it).
pub fn slab(
    account_type: &'static str,
    discriminator: &[u8],
    slab_bytes: usize,
    data: &[u8],
) -> Result<Vec<u64>, DecodeError> {
    let expected = discriminator.len() + slab_bytes;
    if data.len() != expected {
        return Err(DecodeError::WrongLength {
            account_type,
            expected,
            actual: data.len(),
        });
    }
    if data[..discriminator.len()] != *discriminator {
        return Err(DecodeError::WrongDiscriminator { account_type });
    }
    let mut words = vec![0u64; slab_bytes / 8];
    bytemuck::cast_slice_mut::<u64, u8>(&mut words).copy_from_slice(&data[discriminator.len()..]);
    Ok(words)
}

pub fn exchange(data: &[u8]) -> Result<Exchange, DecodeError> {
    zero_copy("Exchange", data)
}

pub fn margin_account(data: &[u8]) -> Result<MarginAccount, DecodeError> {
    zero_copy("MarginAccount", data)
}

pub fn market(data: &[u8]) -> Result<Market, DecodeError> {
    zero_copy("Market", data)
}

pub fn underlying(data: &[u8]) -> Result<Underlying, DecodeError> {
    zero_copy("Underlying", data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_own_layout_and_refuses_others() {
        let mut account: MarginAccount = bytemuck::Zeroable::zeroed();
        account.collateral = 42;
        let mut bytes = MarginAccount::DISCRIMINATOR.to_vec();
        bytes.extend_from_slice(bytemuck::bytes_of(&account));
        assert_eq!(margin_account(&bytes).unwrap().collateral, 42);
        // Same length, other type: refused by discriminator (type cosplay).
        assert!(matches!(
            zero_copy::<MarginAccount>("MarginAccount", &{
                let mut b = bytes.clone();
                b[0] ^= 1;
                b
            }),
            Err(DecodeError::WrongDiscriminator { .. })
        ));
        assert!(matches!(
            exchange(&bytes),
            Err(DecodeError::WrongLength { .. })
        ));
        assert!(matches!(
            margin_account(&bytes[..10]),
            Err(DecodeError::WrongLength { .. })
        ));
    }
}
