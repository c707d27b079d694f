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

impl Ticks {
    /// The quote value of `quantity` at this price, or `None` on overflow.
    pub fn checked_quote(self, quantity: BaseLots) -> Option<QuoteLots> {
        self.0.checked_mul(quantity.0).map(QuoteLots)
    }
}

impl QuoteLots {
    /// Native units of the quote mint, given native units per quote lot.
    pub fn checked_to_native(self, quote_lot_size: u64) -> Option<NativeUnits> {
        self.0.checked_mul(quote_lot_size).map(NativeUnits)
    }
}

impl BaseLots {
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
    fn arithmetic_is_checked() {
        assert_eq!(BaseLots(1).checked_sub(BaseLots(2)), None);
        assert_eq!(BaseLots(u64::MAX).checked_add(BaseLots(1)), None);
        assert_eq!(BaseLots(5).saturating_sub(BaseLots(7)), BaseLots::ZERO);
        assert_eq!(BaseLots(3).min(BaseLots(2)), BaseLots(2));
    }
}
