use anchor_lang::prelude::*;

use crate::engine::{BookSide, EventQueue, Side};
use crate::error::KestrelError;
use crate::events::MarketCreated;
use crate::state::*;

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateMarketArgs {
    pub market_index: u16,
    /// Zero-padded, e.g. "SOL-PERP".
    pub name: [u8; 16],
    pub base_lot_size: u64,
    pub quote_lot_size: u64,
    pub params: MarketParams,
}

/// Creates a market on an underlying, which its price comes from: a
/// perpetual, or with `future` a dated future (no funding; trading stops at
/// `future.expiry` and it settles in cash at the settlement window's TWAP
/// of the underlying's accepted price). One instruction for both: every
/// instruction's account checks are inlined into the program's entrypoint,
/// which SBPF v0's branch range bounds.
/// The book sides and the event queue are too large to create here (CPI allocations stop at 10 KiB): the client creates
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
    #[account(has_one = exchange @ KestrelError::WrongExchange)]
    pub underlying: AccountLoader<'info, Underlying>,
    pub system_program: Program<'info, System>,
}

#[inline(never)]
pub fn create_market(
    ctx: Context<CreateMarket>,
    args: CreateMarketArgs,
    future: Option<FutureParams>,
) -> Result<()> {
    match future {
        None => init_market(
            &ctx,
            &args,
            InstrumentKind::Perp,
            FutureParams::default(),
            OptionParams::default(),
        ),
        Some(future) => {
            future.validate(Clock::get()?.unix_timestamp, args.params.price_band_bps)?;
            init_market(
                &ctx,
                &args,
                InstrumentKind::Future,
                future,
                OptionParams::default(),
            )
        }
    }
}

/// Validates `args` and formats the market, its book sides and its queue as
/// a market of `kind` (with `future` for a dated future or an option's
/// expiry, `option` for an option's series).
pub fn init_market(
    ctx: &Context<CreateMarket>,
    args: &CreateMarketArgs,
    kind: InstrumentKind,
    future: FutureParams,
    option: OptionParams,
) -> Result<()> {
    args.params.validate()?;
    // A base lot within i64, so a signed position in native units is one
    // checked product (health prices every position so).
    require!(
        args.base_lot_size > 0
            && args.quote_lot_size > 0
            && i64::try_from(args.base_lot_size).is_ok(),
        KestrelError::InvalidLotSize
    );
    require!(args.name[0] != 0, KestrelError::InvalidMarketName);
    let accounts = &ctx.accounts;

    BookSide::init(&mut accounts.bids.load_init()?.data, Side::Bid)
        .map_err(|_| KestrelError::InvalidMarketAccount)?;
    BookSide::init(&mut accounts.asks.load_init()?.data, Side::Ask)
        .map_err(|_| KestrelError::InvalidMarketAccount)?;
    EventQueue::init(&mut accounts.event_queue.load_init()?.data)
        .map_err(|_| KestrelError::InvalidMarketAccount)?;

    let mut market = accounts.market.load_init()?;
    market.exchange = accounts.exchange.key();
    market.underlying = accounts.underlying.key();
    market.underlying_index = accounts.underlying.load()?.underlying_index;
    market.kind = kind as u8;
    market.future.params = future;
    market.option = option;
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
    market.params = args.params;

    emit!(MarketCreated {
        market: accounts.market.key(),
        market_index: args.market_index,
        name: args.name,
    });
    Ok(())
}
