// Package mail owns the gateway's mail: the message of each kind
// (sign-in link or code, verification, reset) rendered from replaceable
// templates, and its transport, an SMTP client. It knows nothing of the
// flows that send them; signin decides when and to whom.
package mail

import "context"

// Message is one mail: a text part and, when HTML is set, an HTML
// alternative.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Mailer sends one mail. SMTPMailer is one; a decorator (metrics,
// tracing) wraps another.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}
