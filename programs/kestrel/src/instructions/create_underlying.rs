use anchor_lang::prelude::*;

use crate::error::KestrelError;
use crate::events::UnderlyingCreated;
use crate::oracle;
use crate::state::*;

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateUnderlyingArgs {
    pub underlying_index: u16,
    /// Zero-padded, e.g. "SOL".
    pub name: [u8; 16],
    /// Decimals of the base asset's native unit (9 for SOL).
    pub base_decimals: u8,
    pub oracle: OracleConfig,
}

/// Lists an underlying asset: its feeds and bounds. The feeds' current
/// updates start its records (and a current price its last good one), so
/// its markets can trade as soon as they are created.
#[derive(Accounts)]
#[instruction(args: CreateUnderlyingArgs)]
pub struct CreateUnderlying<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,
    #[account(has_one = admin @ KestrelError::NotAdmin)]
    pub exchange: AccountLoader<'info, Exchange>,
    #[account(
        init,
        payer = admin,
        space = Underlying::SPACE,
        seeds = [UNDERLYING_SEED, exchange.key().as_ref(), &args.underlying_index.to_le_bytes()],
        bump,
    )]
    pub underlying: AccountLoader<'info, Underlying>,
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
pub fn create_underlying(ctx: Context<CreateUnderlying>, args: CreateUnderlyingArgs) -> Result<()> {
    args.oracle.validate()?;
    require!(args.name[0] != 0, KestrelError::InvalidMarketName);
    let accounts = &ctx.accounts;
    let primary = accounts.primary_oracle.as_ref();
    let fallback = accounts.fallback_oracle.as_ref().map(|a| a.as_ref());
    check_oracle_accounts(&args.oracle, primary, fallback)?;

    let mut underlying = accounts.underlying.load_init()?;
    underlying.exchange = accounts.exchange.key();
    underlying.name = args.name;
    underlying.oracle = StoredOracleConfig::from(&args.oracle);
    underlying.underlying_index = args.underlying_index;
    underlying.bump = ctx.bumps.underlying;
    underlying.base_decimals = args.base_decimals;
    underlying.quote_decimals = accounts.exchange.load()?.collateral_decimals;
    let clock = Clock::get()?;
    let reading = oracle::refresh_price(&underlying, primary, fallback, &clock)?;
    underlying.store(&reading, clock.unix_timestamp);

    emit!(UnderlyingCreated {
        underlying: accounts.underlying.key(),
        underlying_index: args.underlying_index,
        name: args.name,
    });
    Ok(())
}
