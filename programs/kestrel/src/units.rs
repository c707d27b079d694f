//! Typed quantities. A price in ticks, a quantity in base lots, an amount in
//! quote lots and an amount in a mint's native units are different types, so
//! one cannot be passed where another is expected. Arithmetic is checked.
//!
//! Convention: a tick is one quote lot per base lot, so a fill of `q` base
//! lots at `p` ticks is exactly `p * q` quote lots (no division, no rounding).
use bytemuck::{Pod, Zeroable};

macro_rules! unsigned_quantity {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Pod, Zeroable)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            pub const ZERO: Self = Self(0);
            pub const MAX: Self = Self(u64::MAX);

            pub fn checked_add(self, other: Self) -> Option<Self> {
                self.0.checked_add(other.0).map(Self)
            }

            pub fn checked_sub(self, other: Self) -> Option<Self> {
                self.0.checked_sub(other.0).map(Self)
            }

            pub fn saturating_sub(self, other: Self) -> Self {
                Self(self.0.saturating_sub(other.0))
            }

            pub fn is_zero(self) -> bool {
                self.0 == 0
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{} {}", self.0, stringify!($name))
            }
        }
    };
}

macro_rules! signed_quantity {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Pod, Zeroable)]
        #[repr(transparent)]
        pub struct $name(pub i64);

        impl $name {
            pub const ZERO: Self = Self(0);

            pub fn checked_add(self, other: Self) -> Option<Self> {
                self.0.checked_add(other.0).map(Self)
            }

            pub fn checked_sub(self, other: Self) -> Option<Self> {
                self.0.checked_sub(other.0).map(Self)
            }

            pub fn checked_neg(self) -> Option<Self> {
                self.0.checked_neg().map(Self)
            }

            pub fn is_zero(self) -> bool {
                self.0 == 0
            }

            pub fn unsigned_abs(self) -> u64 {
                self.0.unsigned_abs()
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{} {}", self.0, stringify!($name))
            }
        }
    };
}

unsigned_quantity!(
    /// A price: quote lots per base lot.
    Ticks
);
unsigned_quantity!(
    /// A quantity of the traded asset, in the market's base lots.
    BaseLots
);
unsigned_quantity!(
    /// An amount of the quote (collateral) asset, in the market's quote lots.
    QuoteLots
);
unsigned_quantity!(
    /// An amount in a mint's smallest unit (what token accounts hold).
    NativeUnits
);
signed_quantity!(
    /// A signed quantity in base lots: a position (long > 0) or a change
    /// to one.
    SignedBaseLots
);
signed_quantity!(
    /// A signed amount in a mint's native units: a position's entry quote
    /// (< 0: paid for a long), a realized profit or loss, a collateral flow.
    SignedNativeUnits
);

/// A price in native quote units per base lot (I80F48): what a position's
/// base lots are valued at. Kept apart from a price per native base unit
/// (the underlying's), which differs from it by the lot size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct PricePerLot(pub fixed::types::I80F48);

impl Ticks {
    /// The quote value of `quantity` at this price, or `None` on overflow.
    pub fn checked_quote(self, quantity: BaseLots) -> Option<QuoteLots> {
        self.0.checked_mul(quantity.0).map(QuoteLots)
    }
}

impl NativeUnits {
    /// This amount as the collateral flow of a trade on `side`: a bid pays
    /// it (< 0), an ask receives it. `None` past i64.
    pub fn flow(self, side: crate::engine::Side) -> Option<SignedNativeUnits> {
        let amount = i64::try_from(self.0).ok()?;
        match side {
            crate::engine::Side::Bid => amount.checked_neg().map(SignedNativeUnits),
            crate::engine::Side::Ask => Some(SignedNativeUnits(amount)),
        }
    }
}

impl QuoteLots {
    /// Native units of the quote mint, given native units per quote lot.
    pub fn checked_to_native(self, quote_lot_size: u64) -> Option<NativeUnits> {
        self.0.checked_mul(quote_lot_size).map(NativeUnits)
    }
}

impl BaseLots {
    /// These lots as a change to a position traded on `side`: a bid buys
    /// (> 0), an ask sells. `None` past i64.
    pub fn signed(self, side: crate::engine::Side) -> Option<SignedBaseLots> {
        let lots = i64::try_from(self.0).ok()?;
        match side {
            crate::engine::Side::Bid => Some(SignedBaseLots(lots)),
            crate::engine::Side::Ask => lots.checked_neg().map(SignedBaseLots),
        }
    }

    pub fn min(self, other: Self) -> Self {
        if self <= other {
            self
        } else {
            other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_is_price_times_quantity_and_overflow_is_none() {
        assert_eq!(
            Ticks(250).checked_quote(BaseLots(4)),
            Some(QuoteLots(1_000))
        );
        assert_eq!(Ticks(u64::MAX).checked_quote(BaseLots(2)), None);
        assert_eq!(
            QuoteLots(1_000).checked_to_native(10),
            Some(NativeUnits(10_000))
        );
        assert_eq!(QuoteLots(u64::MAX).checked_to_native(2), None);
    }

    #[test]
    fn a_side_signs_lots_and_flows() {
        use crate::engine::Side;
        assert_eq!(BaseLots(3).signed(Side::Bid), Some(SignedBaseLots(3)));
        assert_eq!(BaseLots(3).signed(Side::Ask), Some(SignedBaseLots(-3)));
        assert_eq!(BaseLots(u64::MAX).signed(Side::Bid), None);
        assert_eq!(NativeUnits(5).flow(Side::Bid), Some(SignedNativeUnits(-5)));
        assert_eq!(NativeUnits(5).flow(Side::Ask), Some(SignedNativeUnits(5)));
        assert_eq!(NativeUnits(1 << 63).flow(Side::Ask), None);
        assert_eq!(SignedBaseLots(i64::MIN).checked_neg(), None);
        assert_eq!(SignedBaseLots(-4).unsigned_abs(), 4);
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(BaseLots(1).checked_sub(BaseLots(2)), None);
        assert_eq!(BaseLots(u64::MAX).checked_add(BaseLots(1)), None);
        assert_eq!(BaseLots(5).saturating_sub(BaseLots(7)), BaseLots::ZERO);
        assert_eq!(BaseLots(3).min(BaseLots(2)), BaseLots(2));
    }
}
