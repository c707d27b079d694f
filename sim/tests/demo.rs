use kestrel::state::MarketStatus;
use kestrel_sim::chain::ProgramMode;

#[tokio::test]
async fn the_demo_refuses_what_it_must_liquidates_and_reconciles_the_vault() {
    let report = kestrel_sim::demo::run(ProgramMode::from_env()).await;
    assert_eq!(
        report.refusals,
        [
            "bob withdraws 3,000: InsufficientFreeCollateral",
            "bob withdraws from alice's account: NotMarginAccountOwner",
            "carol withdraws while paused: WithdrawalsPaused",
            "bob bids for 200 SOL: InsufficientHealth",
        ]
    );
    assert!(report.conservation_held, "{}", report.text);
    assert_eq!(
        report.migration_steps,
        [13, 0],
        "one underlying (and its option terms), the perpetual (and its caps), the dated future and the six options of SOL-W1 on it created, the lookup table created and extended, then nothing to do"
    );
    // Dave's 9 SOL long is partly liquidated by the keeper once the oracle
    // reaches 138, down to what restores health halfway between maintenance
    // and initial margin; natively and on the SBF build alike.
    assert_eq!(report.liquidations, ["dave: +900 -> +148 lots in market 0"]);
    assert!(report.funding_updates >= 2, "{}", report.text);
    // Every cycle after a new oracle price refreshes the underlying first
    // (the 7 cycles after the 7 publications); the one cycle with nothing
    // newer and a price still current sends none.
    assert_eq!(report.underlying_refreshes, 7, "{}", report.text);
    for line in [
        // Bob's 0.075 taker fee less alice's 0.03 rebate and the 0.0001
        // crank reward, swept before the keeper ran.
        "Fee vault 0.044900",
        "Trades     4 fills",
        // 500 staked plus 40% of the 2.5% fee on 752 lots at 138.
        "Insurance  510.377600 in the fund",
        // Once bob bids 137.00 inside the band, the keeper sells the 752
        // lots it took over; bob's stale 151.00 bid leaves the book unfilled.
        "Unwinds    1\n  keeper: +752 -> +0 lots in market 0",
        "Keeper     8 cycles, 4 events consumed, 0 races, 0 refusals, 0 bankruptcies, 7 underlying refreshes",
        "Vault 11,439.577500 = collateral 11,341.103726",
        "alice    market 0: -1000 lots",
        "bob      market 0: +852 lots",
        "dave     market 0: +148 lots",
        "Base positions net to 0 lots",
    ] {
        assert!(report.text.contains(line), "{line}\n{}", report.text);
    }
    assert!(report.text.contains("(closed)"), "{}", report.text);

    future_settled(&report);
    options_settled(&report);
}

/// SOL-FUT: traded, its window covered by the keeper's refreshes (five
/// minutes missed on purpose), expired, settled in cash by the keeper and
/// closed, the vault
/// still reconciled; natively and on the SBF build alike.
fn future_settled(report: &kestrel_sim::demo::Report) {
    let future = &report.future;
    assert_eq!(future.status, Some(MarketStatus::Closed), "{}", report.text);
    assert!(future.conservation_held, "{}", future.text);
    assert!(
        future.keeper_failures.is_empty(),
        "{:?}",
        future.keeper_failures
    );
    assert_eq!(future.expiry_after_listing, 7_200, "expiry_in_seconds");
    // Thirty minutes in the window, five of them with the keeper down: 25
    // covered; a capture each minute the keeper ran, and one after expiry.
    assert_eq!(
        (future.covered_seconds, future.settlement_samples),
        (1_500, 26)
    );
    // (6 x 140 + 6 x 141 + 3 x 142 + 4 x 143 + 6 x 144) / 25 minutes;
    // 142.00 over all 30 had the keeper not been down. The program's
    // average is rounded down in binary fixed point: a millionth under.
    assert_eq!(future.expected_price, "141.920000");
    assert_eq!(future.settlement_price, "141.919999");
    assert_eq!(future.price_without_the_miss, "142.000000");
    // 2 SOL at 141.919999...: the long receives its value rounded down, the
    // short pays it rounded up (the 1 unit left stays with the market).
    assert_eq!(
        future.positions_settled,
        [
            "alice: -200 lots in market 1 for -283.840000",
            "bob: +200 lots in market 1 for 283.839999",
        ]
    );
    assert_eq!(future.orders_cancelled, 2, "alice's two quotes");
    assert_eq!(
        future.refusals,
        ["bob bids for SOL-FUT after its expiry: MarketExpired"]
    );
    // On the funding schedule (every 10 minutes) until expiry.
    assert_eq!(future.basis_updates, 5, "{}", future.text);
    for line in [
        "Dated future SOL-FUT (market 1, on SOL)",
        "Window     the last 30 minutes, SOL refreshed every minute but for 15 to 10 minutes before expiry (the keeper down on purpose: those minutes are not covered); the average covers 1500 of 1800 s",
        "Settlement 141.919999 USDC per SOL, the average of SOL's accepted price over the covered minutes (142.000000 had the keeper not been down)",
        "  alice    -200 lots settled for -283.840000 (entry quote 278.000000: PnL -5.840000), 2 orders cancelled, position closed",
        "  bob      +200 lots settled for 283.839999 (entry quote -278.000000: PnL 5.839999), 0 orders cancelled, position closed",
        "Status     Closed: open interest 0 long / 0 short, 0 orders on the book",
        "Keeper     29 cycles, 1 events consumed, 5 basis updates, 26 settlement captures, 2 positions settled",
        // The perpetual's vault, plus the future's fees (bob's 0.139 taker
        // fee less alice's 0.0556 rebate) and the settlement's rounding unit.
        "Vault 11,439.577500 = collateral 11,341.020425 + entry quote 97.760000 + owed to makers 0.000000 + fees owed 0.797072 + funding balance 0.000003: conservation HELD",
    ] {
        assert!(future.text.contains(line), "{line}\n{}", future.text);
    }
}

/// SOL-W1: quoted by erin around the program's model value, bob's call
/// spread and put bought from her, his uncovered short refused, SOL
/// rallying, the series settled at expiry for its intrinsic values by the
/// keeper and the six markets closed, the vault still reconciled; natively
/// and on the SBF build alike.
fn options_settled(report: &kestrel_sim::demo::Report) {
    let options = &report.options;
    assert!(options.conservation_held, "{}", options.text);
    assert!(
        options.keeper_failures.is_empty(),
        "{:?}",
        options.keeper_failures
    );
    assert_eq!(
        options.statuses,
        [Some(MarketStatus::Closed); 6],
        "{}",
        options.text
    );
    assert_eq!(
        options.refusals,
        ["bob offers 200 SOL of uncovered 160 calls: InsufficientHealth"]
    );
    // Erin's asks, 2 % above the model at SOL 145 and 80 %, and her bid.
    assert_eq!(
        options.trades,
        [
            "SOL-W1-150C: +100 lots at 4.37",
            "SOL-W1-160C: -100 lots at 1.66",
            "SOL-W1-140P: +100 lots at 4.16",
        ]
    );
    // 162 through the window, rounded down in binary fixed point.
    assert_eq!(options.settlement_price, "161.999999");
    // Intrinsic values on one SOL: 12 for the 150 call, 2 for the 160 call,
    // nothing for the 140 put (a short pays rounded up); erin's quoted
    // series she did not trade settle nothing.
    assert_eq!(
        options.positions_settled,
        [
            "bob: +100 lots in market 3 for 0.000000",
            "bob: +100 lots in market 4 for 12.000000",
            "bob: -100 lots in market 6 for -2.000001",
            "erin: +0 lots in market 2 for 0.000000",
            "erin: +0 lots in market 5 for 0.000000",
            "erin: +0 lots in market 7 for 0.000000",
            "erin: +100 lots in market 6 for 2.000000",
            "erin: -100 lots in market 3 for 0.000000",
            "erin: -100 lots in market 4 for -12.000001",
        ],
        "{}",
        options.text
    );
    // 12 − 4.37 − 2.000001 + 1.66 − 4.16.
    assert_eq!(options.bob_settled_pnl, 3_129_999);
    for line in [
        "  150 call             -        -    4.2799  +0.400",
        "  bob      SOL-W1-150C +100 lots for 12.000000 (premium -4.370000), SOL-W1-160C -100 lots for -2.000001 (premium 1.660000), SOL-W1-140P +100 lots for 0.000000 (premium -4.160000); PnL 3.129999, 0 orders cancelled",
        "12 orders cancelled",
        "Status     all six Closed: open interest 0, 0 orders on the books; a cycle later 0 settlement transactions",
        "conservation HELD",
    ] {
        assert!(options.text.contains(line), "{line}\n{}", options.text);
    }
}
