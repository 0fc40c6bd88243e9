package hpp

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payloom/payloom"
)

// lang is a language the pages speak.
type lang string

const (
	langEN   lang = "en"
	langPTBR lang = "pt-BR"
)

// pickLang chooses the page's language: ?lang= (or the form's lang) when it
// names one we speak, else the best match of Accept-Language, else English.
// explicit reports whether the request named it, so that redirects keep it.
func pickLang(r *http.Request, override string) (l lang, explicit bool) {
	if l, ok := parseLang(override); ok {
		return l, true
	}
	type choice struct {
		l lang
		q float64
	}
	var best *choice
	for i, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		if i >= 32 {
			break // a header this long is not a browser's
		}
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		l, ok := parseLang(tag)
		if !ok || q == 0 {
			continue
		}
		if best == nil || q > best.q {
			best = &choice{l, q}
		}
	}
	if best != nil {
		return best.l, false
	}
	return langEN, false
}

// parseLang maps a language tag to one we speak: any Portuguese to
// Brazilian Portuguese (the only one we have), any English to English.
func parseLang(tag string) (lang, bool) {
	base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
	switch base {
	case "pt":
		return langPTBR, true
	case "en":
		return langEN, true
	}
	return "", false
}

// messages holds every text of the pages, by key, in each language.
var messages = map[lang]map[string]string{
	langEN: {
		"title.pay":             "Pay %s",
		"test_mode":             "Test mode",
		"test_mode.note":        "Test mode: no real money moves. Use a test card such as 4242 4242 4242 4242.",
		"pay_to":                "Pay %s",
		"total":                 "Total",
		"qty":                   "Qty %d",
		"card.section":          "Card details",
		"card.number":           "Card number",
		"card.exp":              "Expiry date",
		"card.exp.hint":         "MM / YY",
		"card.cvc":              "Security code",
		"card.cvc.hint":         "3 digits on the back (Amex: 4 on the front)",
		"card.name":             "Name on card",
		"card.name.optional":    "(optional)",
		"saved.section":         "Saved cards",
		"saved.new":             "Use a new card",
		"saved.card":            "%s ending in %s, expires %02d/%02d",
		"pay.button":            "Pay %s",
		"pay.processing":        "Processing…",
		"secured":               "Payments are processed securely by Payloom. Your card details are never shared with %s.",
		"cancel":                "Cancel and return to %s",
		"expires":               "This payment link expires on %s.",
		"err.number.required":   "Enter your card number.",
		"err.number.invalid":    "This card number is not valid. Check it and try again.",
		"err.exp.required":      "Enter the expiry date as MM / YY.",
		"err.exp.invalid":       "This expiry date is not valid.",
		"err.exp.past":          "This card has expired.",
		"err.cvc.invalid":       "Enter the 3 or 4 digit security code.",
		"err.name.invalid":      "The name on the card is too long.",
		"err.saved.invalid":     "Choose one of your saved cards, or use a new card.",
		"err.form":              "Check the highlighted fields.",
		"err.csrf":              "This form has expired. Reload the page and try again.",
		"decline.generic":       "Your card was declined. Try another card.",
		"decline.funds":         "Your card has insufficient funds. Try another card.",
		"decline.cvc":           "The security code is incorrect. Check it, or try another card.",
		"decline.expired":       "Your card has expired. Try another card.",
		"decline.auth":          "Your bank could not confirm it was you. Try again, or use another card.",
		"decline.processing":    "We could not process your card. Try again in a moment, or use another card.",
		"state.paid.title":      "Payment successful",
		"state.paid.body":       "You paid %s to %s.",
		"state.paid.receipt":    "View your receipt",
		"state.expired.title":   "This payment link has expired",
		"state.expired.body":    "It can no longer be used to pay. Ask %s for a new link.",
		"state.canceled.title":  "This payment was canceled",
		"state.canceled.body":   "%s canceled this payment. No money was taken.",
		"state.closed.title":    "This payment can no longer be made",
		"state.closed.body":     "Ask %s for a new payment link.",
		"state.limit.body":      "Too many cards were tried for this payment. Ask %s for a new payment link.",
		"state.processing":      "We are confirming your payment",
		"state.processing.body": "This takes a few seconds. This page refreshes by itself.",
		"state.action.title":    "Your bank needs to confirm this payment",
		"state.action.body":     "Continue to your bank to confirm it's you.",
		"state.action.button":   "Continue to your bank",
		"state.back":            "Return to %s",
		"notfound.title":        "Payment link not found",
		"notfound.body":         "This link is not valid. Check that you copied all of it, or ask the seller for a new one.",
		"error.title":           "Something went wrong",
		"error.body":            "We could not load this page. Try again in a moment.",
		"authdone.title":        "Authentication complete",
		"authdone.body":         "You can close this window and return to the seller.",
		"receipt.title":         "Receipt from %s",
		"receipt.number":        "Receipt for payment",
		"receipt.paid":          "Amount paid",
		"receipt.date":          "Date paid",
		"receipt.method":        "Payment method",
		"receipt.auth":          "Authorization code",
		"receipt.items":         "Summary",
		"receipt.refunds":       "Refunds",
		"receipt.refund":        "Refund on %s",
		"receipt.refund.pend":   "Refund on %s (pending)",
		"receipt.refunded":      "Total refunded",
		"receipt.net":           "Net amount",
		"receipt.print":         "Print or save as PDF",
		"receipt.questions":     "Questions about this payment? Contact %s.",
		"receipt.notfound":      "This receipt is not available.",
		"card.ending":           "%s ending in %s",
	},
	langPTBR: {
		"title.pay":             "Pagar %s",
		"test_mode":             "Modo de teste",
		"test_mode.note":        "Modo de teste: nenhum dinheiro real é movimentado. Use um cartão de teste como 4242 4242 4242 4242.",
		"pay_to":                "Pagar %s",
		"total":                 "Total",
		"qty":                   "Qtd. %d",
		"card.section":          "Dados do cartão",
		"card.number":           "Número do cartão",
		"card.exp":              "Validade",
		"card.exp.hint":         "MM / AA",
		"card.cvc":              "Código de segurança",
		"card.cvc.hint":         "3 dígitos no verso (Amex: 4 na frente)",
		"card.name":             "Nome no cartão",
		"card.name.optional":    "(opcional)",
		"saved.section":         "Cartões salvos",
		"saved.new":             "Usar um novo cartão",
		"saved.card":            "%s com final %s, validade %02d/%02d",
		"pay.button":            "Pagar %s",
		"pay.processing":        "Processando…",
		"secured":               "Pagamento processado com segurança pela Payloom. Os dados do seu cartão nunca são compartilhados com %s.",
		"cancel":                "Cancelar e voltar para %s",
		"expires":               "Este link de pagamento expira em %s.",
		"err.number.required":   "Informe o número do cartão.",
		"err.number.invalid":    "Este número de cartão não é válido. Confira e tente novamente.",
		"err.exp.required":      "Informe a validade no formato MM / AA.",
		"err.exp.invalid":       "Esta validade não é válida.",
		"err.exp.past":          "Este cartão está vencido.",
		"err.cvc.invalid":       "Informe o código de segurança de 3 ou 4 dígitos.",
		"err.name.invalid":      "O nome no cartão é longo demais.",
		"err.saved.invalid":     "Escolha um dos seus cartões salvos ou use um novo cartão.",
		"err.form":              "Confira os campos destacados.",
		"err.csrf":              "Este formulário expirou. Recarregue a página e tente novamente.",
		"decline.generic":       "Seu cartão foi recusado. Tente outro cartão.",
		"decline.funds":         "Seu cartão não tem saldo suficiente. Tente outro cartão.",
		"decline.cvc":           "O código de segurança está incorreto. Confira ou tente outro cartão.",
		"decline.expired":       "Seu cartão está vencido. Tente outro cartão.",
		"decline.auth":          "Seu banco não conseguiu confirmar sua identidade. Tente novamente ou use outro cartão.",
		"decline.processing":    "Não conseguimos processar seu cartão. Tente novamente em instantes ou use outro cartão.",
		"state.paid.title":      "Pagamento aprovado",
		"state.paid.body":       "Você pagou %s para %s.",
		"state.paid.receipt":    "Ver o recibo",
		"state.expired.title":   "Este link de pagamento expirou",
		"state.expired.body":    "Ele não pode mais ser usado para pagar. Peça um novo link para %s.",
		"state.canceled.title":  "Este pagamento foi cancelado",
		"state.canceled.body":   "%s cancelou este pagamento. Nenhum valor foi cobrado.",
		"state.closed.title":    "Este pagamento não pode mais ser feito",
		"state.closed.body":     "Peça um novo link de pagamento para %s.",
		"state.limit.body":      "Cartões demais foram tentados neste pagamento. Peça um novo link de pagamento para %s.",
		"state.processing":      "Estamos confirmando seu pagamento",
		"state.processing.body": "Isso leva alguns segundos. Esta página se atualiza sozinha.",
		"state.action.title":    "Seu banco precisa confirmar este pagamento",
		"state.action.body":     "Continue no site do seu banco para confirmar que é você.",
		"state.action.button":   "Continuar no banco",
		"state.back":            "Voltar para %s",
		"notfound.title":        "Link de pagamento não encontrado",
		"notfound.body":         "Este link não é válido. Confira se você copiou o link inteiro ou peça um novo ao vendedor.",
		"error.title":           "Algo deu errado",
		"error.body":            "Não conseguimos carregar esta página. Tente novamente em instantes.",
		"authdone.title":        "Autenticação concluída",
		"authdone.body":         "Você pode fechar esta janela e voltar ao vendedor.",
		"receipt.title":         "Recibo de %s",
		"receipt.number":        "Recibo do pagamento",
		"receipt.paid":          "Valor pago",
		"receipt.date":          "Data do pagamento",
		"receipt.method":        "Forma de pagamento",
		"receipt.auth":          "Código de autorização",
		"receipt.items":         "Resumo",
		"receipt.refunds":       "Reembolsos",
		"receipt.refund":        "Reembolso em %s",
		"receipt.refund.pend":   "Reembolso em %s (pendente)",
		"receipt.refunded":      "Total reembolsado",
		"receipt.net":           "Valor líquido",
		"receipt.print":         "Imprimir ou salvar em PDF",
		"receipt.questions":     "Dúvidas sobre este pagamento? Fale com %s.",
		"receipt.notfound":      "Este recibo não está disponível.",
		"card.ending":           "%s com final %s",
	},
}

// brandNames are the card networks' names as shoppers know them.
var brandNames = map[payloom.CardBrand]string{
	payloom.CardBrandVisa: "Visa", payloom.CardBrandMastercard: "Mastercard", payloom.CardBrandAmex: "American Express",
	payloom.CardBrandDiscover: "Discover", payloom.CardBrandDiners: "Diners Club", payloom.CardBrandJCB: "JCB",
	payloom.CardBrandUnionPay: "UnionPay", payloom.CardBrandElo: "Elo", payloom.CardBrandHipercard: "Hipercard",
}

func brandName(b payloom.CardBrand, l lang) string {
	if n, ok := brandNames[b]; ok {
		return n
	}
	if l == langPTBR {
		return "Cartão"
	}
	return "Card"
}

// currencySymbols are the symbols CLDR gives each language for the
// currencies shoppers meet most; any other currency shows its ISO code.
var currencySymbols = map[lang]map[payloom.Currency]string{
	langEN: {
		"USD": "$", "EUR": "€", "GBP": "£", "BRL": "R$", "JPY": "¥", "CAD": "CA$", "AUD": "A$",
		"MXN": "MX$", "CNY": "CN¥", "INR": "₹", "KRW": "₩", "NZD": "NZ$", "HKD": "HK$", "ILS": "₪",
		"VND": "₫", "TWD": "NT$", "PHP": "₱",
	},
	langPTBR: {
		"USD": "US$", "EUR": "€", "GBP": "£", "BRL": "R$", "JPY": "JP¥", "CAD": "CA$", "AUD": "AU$",
		"MXN": "MX$", "CNY": "CN¥", "INR": "₹", "KRW": "₩", "NZD": "NZ$", "HKD": "HK$", "ILS": "₪",
		"VND": "₫", "TWD": "NT$", "PHP": "PHP",
	},
}

const nbsp = "\u00a0"

// formatMoney renders an amount in minor units for a shopper: the
// currency's symbol, digit grouping and decimal separator of the language
// ("$1,234.56", "R$ 1.234,56", "¥1,235", "BHD 1.500" in English;
// "R$ 1.234,56", "US$ 12,34" in Portuguese), with the currency's own number
// of decimals. Negative amounts get a leading minus.
func formatMoney(v int64, c payloom.Currency, l lang) string {
	plain := payloom.FormatAmount(v, c) // "-1234.56": exact, no floats
	neg := strings.HasPrefix(plain, "-")
	plain = strings.TrimPrefix(plain, "-")
	intPart, frac, _ := strings.Cut(plain, ".")
	group, dec := ",", "."
	if l == langPTBR {
		group, dec = ".", ","
	}
	var b strings.Builder
	for i, d := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteString(group)
		}
		b.WriteRune(d)
	}
	num := b.String()
	if frac != "" {
		num += dec + frac
	}
	sym, ok := currencySymbols[l][c]
	if !ok {
		sym = string(c)
	}
	sep := ""
	if l == langPTBR || !ok || isLetters(sym) {
		sep = nbsp // "R$ 10,00" in Portuguese; "CHF 10.00" for a code
	}
	out := sym + sep + num
	if neg {
		out = "-" + out
	}
	return out
}

func isLetters(s string) bool {
	for _, r := range s {
		if (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') {
			return false
		}
	}
	return s != ""
}

var monthNames = map[lang][]string{
	langEN:   {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
	langPTBR: {"janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro", "novembro", "dezembro"},
}

// formatDate renders a time in UTC, with the time of day: "March 14, 2026,
// 3:09 PM UTC" or "14 de março de 2026, 15:09 UTC". The pages do not know
// the shopper's time zone, and say which one they use.
func formatDate(t time.Time, l lang) string {
	t = t.UTC()
	month := monthNames[l][t.Month()-1]
	if l == langPTBR {
		return strconv.Itoa(t.Day()) + " de " + month + " de " + strconv.Itoa(t.Year()) + ", " + t.Format("15:04") + " UTC"
	}
	return month + " " + strconv.Itoa(t.Day()) + ", " + strconv.Itoa(t.Year()) + ", " + t.Format("3:04 PM") + " UTC"
}

// declineMessage is what a shopper reads after a decline: by the failure's
// codes, never the processor's own wording (which may be English, or say
// too much).
func declineMessage(f *payloom.Failure) string {
	if f == nil {
		return ""
	}
	switch {
	case f.DeclineCode == payloom.DeclineAuthenticationFail || f.Code == payloom.FailureAuthentication:
		return "decline.auth"
	case f.DeclineCode == payloom.DeclineInsufficientFunds:
		return "decline.funds"
	case f.Code == payloom.FailureIncorrectCVC:
		return "decline.cvc"
	case f.Code == payloom.FailureExpiredCard:
		return "decline.expired"
	case f.Code == payloom.FailureProcessingError:
		return "decline.processing"
	}
	return "decline.generic"
}
