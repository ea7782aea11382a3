package domain

import (
	"time"
)

// Card is a payment card as the caller sends it. Only Number and the expiry
// are ever stored (sealed); the CVC is used for the charge and dropped.
type Card struct {
	Number   string
	ExpMonth int
	ExpYear  int
	CVC      string
}

// Last4 is the last four digits of the number, the only part ever shown.
func (c Card) Last4() string {
	if len(c.Number) < 4 {
		return c.Number
	}
	return c.Number[len(c.Number)-4:]
}

// Validate checks the card's form (400) and then that it can be charged at
// now (422): a Luhn-valid number and an expiry not in the past.
func (c Card) Validate(now time.Time) error {
	switch {
	case c.Number == "":
		return Invalid("card.number", "card.number is required")
	case len(c.Number) < 12 || len(c.Number) > 19 || !digits(c.Number):
		return Invalid("card.number", "card.number must be 12 to 19 digits")
	case c.ExpMonth < 1 || c.ExpMonth > 12:
		return Invalid("card.exp_month", "card.exp_month must be 1 to 12")
	case c.ExpYear < 2000 || c.ExpYear > 9999:
		return Invalid("card.exp_year", "card.exp_year must be a four-digit year")
	case (len(c.CVC) != 3 && len(c.CVC) != 4) || !digits(c.CVC):
		return Invalid("card.cvc", "card.cvc must be 3 or 4 digits")
	case !Luhn(c.Number):
		return ErrInvalidCardNumber
	case Expired(c.ExpMonth, c.ExpYear, now):
		return ErrCardExpired
	}
	return nil
}

// Expired reports whether a card valid through month/year has expired at
// now: a card is good until the end of its expiry month (in UTC).
func Expired(month, year int, now time.Time) bool {
	firstAfter := time.Date(year, time.Month(month)+1, 1, 0, 0, 0, 0, time.UTC)
	return !now.UTC().Before(firstAfter)
}

// Luhn reports whether a string of digits passes the Luhn checksum.
func Luhn(number string) bool {
	if number == "" || !digits(number) {
		return false
	}
	sum := 0
	double := false
	for i := len(number) - 1; i >= 0; i-- {
		d := int(number[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
