package signin

import (
	"encoding/base64"
	"html/template"
)

// faviconSVG is the icon of the gateway's pages: a keyhole.
const faviconSVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">` +
	`<rect width="32" height="32" rx="7" fill="#16181d"/>` +
	`<circle cx="16" cy="13" r="4.5" fill="#fff"/><path d="M13.6 15.5h4.8l1.6 9h-8z" fill="#fff"/></svg>`

// FaviconURL is the pages' icon as a data: URI. Every page of the gateway
// links it (<link rel="icon">; templates: {{template "favicon"}}), so none
// makes the browser ask the app for its /favicon.ico, and it costs no
// request; the pages' Content-Security-Policy allows data: images.
var FaviconURL = "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString([]byte(faviconSVG))

func faviconURL() template.URL { return template.URL(FaviconURL) }
