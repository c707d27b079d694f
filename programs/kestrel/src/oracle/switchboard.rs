//! Switchboard On-Demand: a `PullFeedAccountData` account.
//!
//! The struct holds `i128` fields, so its in-memory alignment (16 on our
//! builds, 8 on Switchboard's) need not match the account data's (8). Its
//! layout is explicitly padded and identical either way, so the fields are
//! read at their offsets with unaligned reads instead of casting in place.
use core::mem::{offset_of, size_of};

use anchor_lang::prelude::Pubkey;
use switchboard_on_demand::{CurrentResult, Discriminator, PullFeedAccountData};

use super::{OracleError, OracleSource, RawPrice};

/// On-Demand's program id (mainnet, or devnet with the `devnet` feature).
#[cfg(not(feature = "devnet"))]
pub const PROGRAM_ID: Pubkey = anchor_lang::pubkey!("SBondMDrcV3K4kxZR1HNVT7osZxAHVHgYXL5Ze1oMUv");
#[cfg(feature = "devnet")]
pub const PROGRAM_ID: Pubkey = anchor_lang::pubkey!("Aio4gaXjXzJNVLtzwtNVmSqGKpANtXhybbkhtAC94ji2");

/// Feed values and deviations carry 18 decimals.
const EXPONENT: i32 = -18;
const HEADER: usize = 8;
const RESULT_AT: usize = HEADER + offset_of!(PullFeedAccountData, result);
const UPDATED_AT: usize = HEADER + offset_of!(PullFeedAccountData, last_update_timestamp);

// The offsets the reads rely on, as Switchboard documents the layout.
const _: () = assert!(size_of::<PullFeedAccountData>() == 3200);
const _: () = assert!(offset_of!(PullFeedAccountData, result) == 2256);
const _: () = assert!(offset_of!(PullFeedAccountData, last_update_timestamp) == 2208);

/// Reads the feed at `address`, which must be the market's configured feed.
pub fn read(
    address: &Pubkey,
    owner: &Pubkey,
    data: &[u8],
    expected: &Pubkey,
) -> Result<RawPrice, OracleError> {
    if *owner != PROGRAM_ID {
        return Err(OracleError::WrongOwner);
    }
    if address != expected {
        return Err(OracleError::WrongFeed);
    }
    if data.len() < HEADER + size_of::<PullFeedAccountData>()
        || data[..HEADER] != *PullFeedAccountData::DISCRIMINATOR
    {
        return Err(OracleError::BadAccountData);
    }
    let result: CurrentResult =
        bytemuck::pod_read_unaligned(&data[RESULT_AT..RESULT_AT + size_of::<CurrentResult>()]);
    let updated_at: i64 = bytemuck::pod_read_unaligned(&data[UPDATED_AT..UPDATED_AT + 8]);
    if result.num_samples == 0 || result.std_dev < 0 {
        return Err(OracleError::BadAccountData);
    }
    Ok(RawPrice {
        mantissa: result.value,
        confidence: result.std_dev as u128,
        exponent: EXPONENT,
        publish_time: updated_at,
        publish_slot: result.slot,
        source: OracleSource::Switchboard,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn feed_bytes(value: i128, std_dev: i128, updated_at: i64, slot: u64) -> Vec<u8> {
        let mut feed: PullFeedAccountData = bytemuck::Zeroable::zeroed();
        feed.result.value = value;
        feed.result.std_dev = std_dev;
        feed.result.num_samples = 3;
        feed.result.slot = slot;
        feed.last_update_timestamp = updated_at;
        let mut data = PullFeedAccountData::DISCRIMINATOR.to_vec();
        data.extend_from_slice(bytemuck::bytes_of(&feed));
        data
    }

    #[test]
    fn reads_a_real_feed_at_any_alignment_and_refuses_impostors() {
        let address = Pubkey::new_unique();
        let data = feed_bytes(150 * 10i128.pow(18), 10i128.pow(17), 1_000, 77);
        // Shift by one byte to prove nothing depends on the buffer's alignment.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&data);
        for bytes in [&data[..], &shifted[1..]] {
            let raw = read(&address, &PROGRAM_ID, bytes, &address).unwrap();
            assert_eq!(
                (raw.mantissa, raw.confidence, raw.exponent),
                (150 * 10i128.pow(18), 10u128.pow(17), -18)
            );
            assert_eq!((raw.publish_time, raw.publish_slot), (1_000, 77));
        }
        assert_eq!(
            read(&address, &Pubkey::new_unique(), &data, &address),
            Err(OracleError::WrongOwner)
        );
        assert_eq!(
            read(&address, &PROGRAM_ID, &data, &Pubkey::new_unique()),
            Err(OracleError::WrongFeed)
        );
        let pyth = crate::oracle::pyth::tests::update_bytes(
            1,
            0,
            0,
            pyth_solana_receiver_sdk::price_update::VerificationLevel::Full,
        );
        assert_eq!(
            read(&address, &PROGRAM_ID, &pyth, &address),
            Err(OracleError::BadAccountData)
        );
        let empty = feed_bytes(0, 0, 0, 0);
        let mut no_samples = empty.clone();
        no_samples[RESULT_AT + 96] = 0; // num_samples
        assert_eq!(
            read(&address, &PROGRAM_ID, &no_samples, &address),
            Err(OracleError::BadAccountData)
        );
    }
}
