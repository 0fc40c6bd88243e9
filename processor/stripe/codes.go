package stripe

import (
	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor"
)

// declineCodes maps Stripe's decline_code values (card_declined errors) to
// Payloom's canonical decline codes. Payloom's vocabulary is Stripe's, so
// most map to themselves; the class (hard or soft) comes from processor's
// shared table. A decline_code not listed is a soft generic decline.
var declineCodes = map[string]string{
	"generic_decline":                   payloom.DeclineGeneric,
	"do_not_honor":                      processor.DeclineDoNotHonor,
	"insufficient_funds":                payloom.DeclineInsufficientFunds,
	"lost_card":                         processor.DeclineLostCard,
	"stolen_card":                       processor.DeclineStolenCard,
	"pickup_card":                       processor.DeclinePickupCard,
	"restricted_card":                   processor.DeclineRestrictedCard,
	"expired_card":                      payloom.DeclineExpiredCard,
	"incorrect_cvc":                     payloom.DeclineIncorrectCVC,
	"invalid_cvc":                       payloom.DeclineIncorrectCVC,
	"fraudulent":                        payloom.DeclineFraudulent,
	"merchant_blacklist":                processor.DeclineMerchantBlacklist,
	"incorrect_number":                  processor.DeclineInvalidNumber,
	"invalid_number":                    processor.DeclineInvalidNumber,
	"invalid_expiry_month":              payloom.DeclineExpiredCard,
	"invalid_expiry_year":               payloom.DeclineExpiredCard,
	"invalid_amount":                    processor.DeclineInvalidAmount,
	"invalid_account":                   processor.DeclineInvalidAccount,
	"new_account_information_available": processor.DeclineInvalidAccount,
	"card_not_supported":                processor.DeclineCardNotSupported,
	"currency_not_supported":            processor.DeclineCurrencyNotSupported,
	"issuer_not_available":              processor.DeclineIssuerNotAvailable,
	"try_again_later":                   processor.DeclineTryAgainLater,
	"reenter_transaction":               processor.DeclineReenterTransaction,
	"processing_error":                  payloom.DeclineProcessingError,
	"approve_with_id":                   processor.DeclineApproveWithID,
	"call_issuer":                       processor.DeclineCallIssuer,
	"do_not_try_again":                  processor.DeclineDoNotTryAgain,
	"transaction_not_allowed":           processor.DeclineTransactionNotAllowed,
	"service_not_allowed":               processor.DeclineTransactionNotAllowed,
	"not_permitted":                     processor.DeclineNotPermitted,
	"card_velocity_exceeded":            processor.DeclineCardVelocityExceeded,
	"withdrawal_count_limit_exceeded":   processor.DeclineWithdrawalCountLimit,
	"authentication_required":           processor.DeclineAuthenticationRequired,
	"incorrect_pin":                     processor.DeclineIncorrectPIN,
	"invalid_pin":                       processor.DeclineIncorrectPIN,
	"offline_pin_required":              processor.DeclineIncorrectPIN,
	"online_or_offline_pin_required":    processor.DeclineIncorrectPIN,
	"pin_try_exceeded":                  processor.DeclinePINTryExceeded,
	"incorrect_zip":                     processor.DeclineIncorrectZip,
	"security_violation":                processor.DeclineSecurityViolation,
	"duplicate_transaction":             processor.DeclineDuplicateTransaction,
	"revocation_of_authorization":       processor.DeclineRevocation,
	"revocation_of_all_authorizations":  processor.DeclineRevocation,
	"stop_payment_order":                processor.DeclineRevocation,
	"no_action_taken":                   processor.DeclineRevocation,
	"testmode_decline":                  processor.DeclineDoNotTryAgain,
}

// errorCodes maps the code of a card_error that has no decline_code.
var errorCodes = map[string]string{
	"card_declined":                         payloom.DeclineGeneric,
	"expired_card":                          payloom.DeclineExpiredCard,
	"incorrect_cvc":                         payloom.DeclineIncorrectCVC,
	"invalid_cvc":                           payloom.DeclineIncorrectCVC,
	"incorrect_number":                      processor.DeclineInvalidNumber,
	"invalid_number":                        processor.DeclineInvalidNumber,
	"invalid_expiry_month":                  payloom.DeclineExpiredCard,
	"invalid_expiry_year":                   payloom.DeclineExpiredCard,
	"incorrect_zip":                         processor.DeclineIncorrectZip,
	"processing_error":                      payloom.DeclineProcessingError,
	"authentication_required":               processor.DeclineAuthenticationRequired,
	"payment_intent_authentication_failure": payloom.DeclineAuthenticationFail,
	"card_decline_rate_limit_exceeded":      processor.DeclineCardVelocityExceeded,
}

// DeclineFor returns the canonical decline code of a Stripe card error
// (its code and decline_code).
func DeclineFor(code, declineCode string) string {
	if c, ok := declineCodes[declineCode]; ok {
		return c
	}
	if c, ok := errorCodes[code]; ok {
		return c
	}
	return payloom.DeclineGeneric
}
