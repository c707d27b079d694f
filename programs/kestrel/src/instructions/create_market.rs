use anchor_lang::prelude::*;

use crate::engine::{BookSide, EventQueue, Side};
use crate::error::KestrelError;
use crate::events::MarketCreated;
use crate::oracle;
use crate::state::*;

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateMarketArgs {
    pub market_index: u16,
    /// Zero-padded, e.g. "SOL-PERP".
    pub name: [u8; 16],
    pub base_decimals: u8,
    pub base_lot_size: u64,
    pub quote_lot_size: u64,
    pub params: MarketParams,
}

/// Creates a perpetual market. The book sides and the event queue are too
/// large to create here (CPI allocations stop at 10 KiB): the client creates
/// them owned by Kestrel, zeroed and of the exact size, and this instruction
/// formats them. Anchor's `zero` refuses one account passed for two of them.
#[derive(Accounts)]
#[instruction(args: CreateMarketArgs)]
pub struct CreateMarket<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,
    #[account(has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(
        init,
        payer = admin,
        space = Market::SPACE,
        seeds = [MARKET_SEED, exchange.key().as_ref(), &args.market_index.to_le_bytes()],
        bump,
    )]
    pub market: AccountLoader<'info, Market>,
    #[account(
        zero,
        constraint = bids.as_ref().data_len() == 8 + BOOK_SIDE_BYTES @ KestrelError::InvalidMarketAccount,
    )]
    pub bids: AccountLoader<'info, BookSideAccount>,
    #[account(
        zero,
        constraint = asks.as_ref().data_len() == 8 + BOOK_SIDE_BYTES @ KestrelError::InvalidMarketAccount,
    )]
    pub asks: AccountLoader<'info, BookSideAccount>,
    #[account(
        zero,
        constraint = event_queue.as_ref().data_len() == 8 + EVENT_QUEUE_BYTES @ KestrelError::InvalidMarketAccount,
    )]
    pub event_queue: AccountLoader<'info, EventQueueAccount>,
    /// CHECK: read by `oracle::read_feed` (owner program, layout, feed).
    pub primary_oracle: UncheckedAccount<'info>,
    /// CHECK: as `primary_oracle`; required exactly when a fallback is configured.
    pub fallback_oracle: Option<UncheckedAccount<'info>>,
    pub system_program: Program<'info, System>,
}

/// The configured feeds must be readable from the given accounts; a feed that
/// is merely stale now is accepted (freshness is checked at every use).
pub fn check_oracle_accounts(
    config: &OracleConfig,
    primary: &AccountInfo,
    fallback: Option<&AccountInfo>,
) -> Result<()> {
    let pinned = |pin: &[u8; 32], account: &AccountInfo| {
        require!(
            *pin == [0; 32] || account.key.to_bytes() == *pin,
            KestrelError::WrongOracleAccount
        );
        Ok(())
    };
    oracle::read_feed(config.primary_kind, &config.primary_feed, primary)?;
    pinned(&config.primary_account, primary)?;
    match (config.fallback_kind, fallback) {
        (OracleKind::None, None) => Ok(()),
        (OracleKind::None, Some(_)) | (_, None) => err!(KestrelError::InvalidOracleConfig),
        (kind, Some(account)) => {
            oracle::read_feed(kind, &config.fallback_feed, account)?;
            pinned(&config.fallback_account, account)
        }
    }
}

#[inline(never)]
pub fn create_market(ctx: Context<CreateMarket>, args: CreateMarketArgs) -> Result<()> {
    args.params.validate()?;
    require!(
        args.base_lot_size > 0 && args.quote_lot_size > 0,
        KestrelError::InvalidLotSize
    );
    require!(args.name[0] != 0, KestrelError::InvalidMarketName);
    let accounts = &ctx.accounts;
    check_oracle_accounts(
        &args.params.oracle,
        &accounts.primary_oracle,
        accounts.fallback_oracle.as_ref().map(|a| a.as_ref()),
    )?;

    BookSide::init(&mut accounts.bids.load_init()?.data, Side::Bid)
        .map_err(|_| KestrelError::InvalidMarketAccount)?;
    BookSide::init(&mut accounts.asks.load_init()?.data, Side::Ask)
        .map_err(|_| KestrelError::InvalidMarketAccount)?;
    EventQueue::init(&mut accounts.event_queue.load_init()?.data)
        .map_err(|_| KestrelError::InvalidMarketAccount)?;

    let mut market = accounts.market.load_init()?;
    market.exchange = accounts.exchange.key();
    market.bids = accounts.bids.key();
    market.asks = accounts.asks.key();
    market.event_queue = accounts.event_queue.key();
    market.name = args.name;
    market.base_lot_size = args.base_lot_size;
    market.quote_lot_size = args.quote_lot_size;
    market.seq_num = 0;
    market.market_index = args.market_index;
    market.status = MarketStatus::Active as u8;
    market.bump = ctx.bumps.market;
    market.base_decimals = args.base_decimals;
    market.apply_params(&args.params);
    // The feeds' updates start the records, and a current price the last
    // good one, so even the first reduce-only order has a band.
    let quote_decimals = accounts.exchange.load()?.collateral_decimals;
    let reading = oracle::market_price(
        &market,
        quote_decimals,
        &accounts.primary_oracle,
        accounts.fallback_oracle.as_ref().map(|a| a.as_ref()),
        &Clock::get()?,
    )?;
    market.prices = reading.records;

    emit!(MarketCreated {
        market: accounts.market.key(),
        market_index: args.market_index,
        name: args.name,
    });
    Ok(())
}
