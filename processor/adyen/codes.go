package adyen

import (
	"github.com/payloom/payloom"
	"github.com/payloom/payloom/processor"
)

// refusalReasons maps Adyen's refusalReasonCode values (Checkout API,
// "Refusal reasons" in Adyen's docs) to Payloom's canonical decline codes;
// the class comes from processor's shared table. A code not listed is a
// soft generic decline.
var refusalReasons = map[string]string{
	"2":  payloom.DeclineGeneric,                  // Refused
	"3":  processor.DeclineCallIssuer,             // Referral
	"4":  payloom.DeclineProcessingError,          // Acquirer Error
	"5":  processor.DeclineRestrictedCard,         // Blocked Card
	"6":  payloom.DeclineExpiredCard,              // Expired Card
	"7":  processor.DeclineInvalidAmount,          // Invalid Amount
	"8":  processor.DeclineInvalidNumber,          // Invalid Card Number
	"9":  processor.DeclineIssuerNotAvailable,     // Issuer Unavailable
	"10": processor.DeclineTransactionNotAllowed,  // Not supported
	"11": payloom.DeclineAuthenticationFail,       // 3D Not Authenticated
	"12": payloom.DeclineInsufficientFunds,        // Not enough balance
	"14": payloom.DeclineFraudulent,               // Acquirer Fraud
	"15": payloom.DeclineGeneric,                  // Cancelled
	"16": payloom.DeclineGeneric,                  // Shopper Cancelled
	"17": processor.DeclineIncorrectPIN,           // Invalid Pin
	"18": processor.DeclinePINTryExceeded,         // Pin tries exceeded
	"19": processor.DeclineIncorrectPIN,           // Pin validation not possible
	"20": payloom.DeclineFraudulent,               // FRAUD
	"21": payloom.DeclineProcessingError,          // Not Submitted
	"22": payloom.DeclineFraudulent,               // FRAUD-CANCELLED
	"23": processor.DeclineTransactionNotAllowed,  // Transaction Not Permitted
	"24": payloom.DeclineIncorrectCVC,             // CVC Declined
	"25": processor.DeclineRestrictedCard,         // Restricted Card
	"26": processor.DeclineRevocation,             // Revocation Of Auth
	"27": payloom.DeclineGeneric,                  // Declined Non Generic
	"28": processor.DeclineCardVelocityExceeded,   // Withdrawal Amount Exceeded
	"29": processor.DeclineWithdrawalCountLimit,   // Withdrawal Count Exceeded
	"31": payloom.DeclineFraudulent,               // Issuer Suspected Fraud
	"32": processor.DeclineIncorrectZip,           // AVS Declined
	"33": processor.DeclineIncorrectPIN,           // Card requires online pin
	"34": processor.DeclineInvalidAccount,         // No checking account available on Card
	"35": processor.DeclineInvalidAccount,         // No savings account available on Card
	"36": processor.DeclineIncorrectPIN,           // Mobile pin required
	"38": processor.DeclineAuthenticationRequired, // Authentication required
	"39": payloom.DeclineAuthenticationFail,       // RReq not received from DS
	"42": payloom.DeclineAuthenticationFail,       // 3DS Authentication Error
	"43": processor.DeclineIncorrectPIN,           // Online PIN required
	"44": processor.DeclineCardNotSupported,       // Try another interface
	"46": processor.DeclineDoNotTryAgain,          // Blocked by Adyen to prevent excessive retry fees
}

// DeclineFor returns the canonical decline code of an Adyen
// refusalReasonCode.
func DeclineFor(refusalReasonCode string) string {
	if c, ok := refusalReasons[refusalReasonCode]; ok {
		return c
	}
	return payloom.DeclineGeneric
}
