//! Pyth pull oracle: a `PriceUpdateV2` account posted by the Pyth receiver.
use anchor_lang::prelude::Pubkey;
use anchor_lang::AccountDeserialize;
use pyth_solana_receiver_sdk::price_update::{FeedId, PriceUpdateV2, VerificationLevel};

use super::{OracleError, OracleSource, RawPrice};

/// Reads the price of `feed_id` from a receiver-owned update account. Only
/// fully verified updates count: a partial one carries fewer guardian
/// signatures than the receiver's quorum.
pub fn read(owner: &Pubkey, data: &[u8], feed_id: &FeedId) -> Result<RawPrice, OracleError> {
    if *owner != pyth_solana_receiver_sdk::ID {
        return Err(OracleError::WrongOwner);
    }
    let update =
        PriceUpdateV2::try_deserialize(&mut &data[..]).map_err(|_| OracleError::BadAccountData)?;
    if update.verification_level != VerificationLevel::Full {
        return Err(OracleError::InsufficientVerification);
    }
    let message = update.price_message;
    if message.feed_id != *feed_id {
        return Err(OracleError::WrongFeed);
    }
    Ok(RawPrice {
        mantissa: i128::from(message.price),
        confidence: u128::from(message.conf),
        exponent: message.exponent,
        publish_time: message.publish_time,
        publish_slot: update.posted_slot,
        source: OracleSource::Pyth,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use anchor_lang::AccountSerialize;
    use pyth_solana_receiver_sdk::price_update::PriceFeedMessage;

    pub const FEED: FeedId = [7; 32];

    pub fn update_bytes(
        price: i64,
        conf: u64,
        publish_time: i64,
        level: VerificationLevel,
    ) -> Vec<u8> {
        let update = PriceUpdateV2 {
            write_authority: Pubkey::new_unique(),
            verification_level: level,
            price_message: PriceFeedMessage {
                feed_id: FEED,
                price,
                conf,
                exponent: -8,
                publish_time,
                prev_publish_time: publish_time - 1,
                ema_price: price,
                ema_conf: conf,
            },
            posted_slot: 42,
        };
        let mut data = Vec::new();
        update.try_serialize(&mut data).unwrap();
        data
    }

    #[test]
    fn reads_a_real_update_and_refuses_the_wrong_owner_feed_or_level() {
        let data = update_bytes(15_000_000_000, 1_000_000, 1_000, VerificationLevel::Full);
        let owner = pyth_solana_receiver_sdk::ID;
        let raw = read(&owner, &data, &FEED).unwrap();
        assert_eq!(
            (raw.mantissa, raw.confidence, raw.exponent),
            (15_000_000_000, 1_000_000, -8)
        );
        assert_eq!((raw.publish_time, raw.publish_slot), (1_000, 42));

        assert_eq!(
            read(&Pubkey::new_unique(), &data, &FEED),
            Err(OracleError::WrongOwner)
        );
        assert_eq!(read(&owner, &data, &[8; 32]), Err(OracleError::WrongFeed));
        let partial = update_bytes(1, 0, 0, VerificationLevel::Partial { num_signatures: 5 });
        assert_eq!(
            read(&owner, &partial, &FEED),
            Err(OracleError::InsufficientVerification)
        );
        // Right owner, other bytes (e.g. a Switchboard layout): the discriminator refuses it.
        assert_eq!(
            read(&owner, &data[1..], &FEED),
            Err(OracleError::BadAccountData)
        );
        assert_eq!(read(&owner, &[], &FEED), Err(OracleError::BadAccountData));
    }
}
