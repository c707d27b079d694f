//! Oracle accounts as the real programs write them, for local chains and tests.
use anchor_lang::AccountSerialize;
use kestrel_sdk::Pubkey;
use pyth_solana_receiver_sdk::price_update::{PriceFeedMessage, PriceUpdateV2, VerificationLevel};
use solana_sdk::account::Account;
use switchboard_on_demand::{Discriminator, PullFeedAccountData};

/// A fully verified Pyth `PriceUpdateV2` for `feed_id`, owned by the receiver,
/// posted in `posted_slot`.
pub fn pyth_update(
    feed_id: [u8; 32],
    price: i64,
    conf: u64,
    exponent: i32,
    publish_time: i64,
    posted_slot: u64,
) -> Account {
    let update = PriceUpdateV2 {
        write_authority: Pubkey::new_unique(),
        verification_level: VerificationLevel::Full,
        price_message: PriceFeedMessage {
            feed_id,
            price,
            conf,
            exponent,
            publish_time,
            prev_publish_time: publish_time,
            ema_price: price,
            ema_conf: conf,
        },
        posted_slot,
    };
    let mut data = Vec::new();
    update.try_serialize(&mut data).expect("serialises");
    owned(pyth_solana_receiver_sdk::ID, data)
}

/// A Switchboard On-Demand pull feed (18-decimal values), owned by On-Demand.
pub fn switchboard_feed(value: i128, std_dev: i128, updated_at: i64, slot: u64) -> Account {
    let mut feed: PullFeedAccountData = bytemuck::Zeroable::zeroed();
    feed.result.value = value;
    feed.result.std_dev = std_dev;
    feed.result.num_samples = 3;
    feed.result.slot = slot;
    feed.last_update_timestamp = updated_at;
    let mut data = PullFeedAccountData::DISCRIMINATOR.to_vec();
    data.extend_from_slice(bytemuck::bytes_of(&feed));
    owned(kestrel::oracle::switchboard::PROGRAM_ID, data)
}

fn owned(owner: Pubkey, data: Vec<u8>) -> Account {
    Account {
        lamports: 1_000_000_000,
        data,
        owner,
        executable: false,
        rent_epoch: 0,
    }
}
