package amberflo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"dunning/internal/httpx"
)

// LifecycleStage is where a customer is in its life with the product.
// Amberflo only moves it forward, in the order of the constants.
type LifecycleStage string

const (
	StageOnboarding LifecycleStage = "ONBOARDING"
	StageTrial      LifecycleStage = "TRIAL"
	StageActive     LifecycleStage = "ACTIVE"
	StageOffboarded LifecycleStage = "OFFBOARDED"
)

// stageRank orders the stages. "TRAIL" is how some of Amberflo's own
// reference spells TRIAL; it is read as TRIAL so it never blocks a move.
var stageRank = map[LifecycleStage]int{
	StageOnboarding: 0,
	StageTrial:      1,
	"TRAIL":         1,
	StageActive:     2,
	StageOffboarded: 3,
}

// Customer is the part of an Amberflo customer record that dunning reads.
// The record has more fields; the client keeps them when it writes.
type Customer struct {
	ID             string
	Name           string
	Email          string
	Traits         map[string]string
	Enabled        bool // a record without the field counts as enabled
	LifecycleStage LifecycleStage
	Created        time.Time
	Updated        time.Time
}

// customerJSON is the wire form of Customer.
type customerJSON struct {
	ID             string            `json:"customerId"`
	Name           string            `json:"customerName"`
	Email          string            `json:"customerEmail"`
	Traits         map[string]string `json:"traits"`
	Enabled        *bool             `json:"enabled"`
	LifecycleStage LifecycleStage    `json:"lifecycleStage"`
	CreateTime     int64             `json:"createTime"` // Unix milliseconds
	UpdateTime     int64             `json:"updateTime"`
}

// record is a whole customer record as Amberflo sent it, unknown fields
// included, so that a PUT can send back everything it did not change.
type record map[string]json.RawMessage

func (r record) customer() (Customer, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return Customer{}, err
	}
	var w customerJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return Customer{}, fmt.Errorf("decode customer: %w", err)
	}
	return Customer{
		ID:             w.ID,
		Name:           w.Name,
		Email:          w.Email,
		Traits:         w.Traits,
		Enabled:        w.Enabled == nil || *w.Enabled,
		LifecycleStage: w.LifecycleStage,
		Created:        unixMilli(w.CreateTime),
		Updated:        unixMilli(w.UpdateTime),
	}, nil
}

// encode writes r back as JSON, leaving strings exactly as they came.
func (r record) encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decodeRecord reads the customer record for id from a. An empty answer,
// or one without a customerId, means there is no such customer; an answer
// that is not a customer record, or is another customer's, is unreadable.
func (c *Client) decodeRecord(a answer, id string) (record, Customer, error) {
	if isNull(a.body) {
		return nil, Customer{}, ErrNotFound
	}
	var r record
	if err := json.Unmarshal(a.body, &r); err != nil {
		return nil, Customer{}, c.unreadable(a, fmt.Errorf("decode customer: %w", err))
	}
	cust, err := r.customer()
	if err != nil {
		return nil, Customer{}, c.unreadable(a, err)
	}
	switch cust.ID {
	case "":
		return nil, Customer{}, ErrNotFound
	case id:
		return r, cust, nil
	default:
		return nil, Customer{}, c.unreadable(a, fmt.Errorf("answered with customer %q", cust.ID))
	}
}

func (c *Client) getRecord(ctx context.Context, id string) (record, Customer, error) {
	segment, err := httpx.PathSegment("customer ID", id)
	if err != nil {
		return nil, Customer{}, err
	}
	a, err := c.do(ctx, "GET", "/customers/"+segment, nil, nil)
	if err != nil {
		return nil, Customer{}, err
	}
	return c.decodeRecord(a, id)
}

// Customer returns the customer with the given ID, or an error matching
// ErrNotFound if Amberflo has none.
func (c *Client) Customer(ctx context.Context, id string) (Customer, error) {
	_, cust, err := c.getRecord(ctx, id)
	if err != nil {
		return Customer{}, fmt.Errorf("amberflo: get customer %q: %w", id, err)
	}
	return cust, nil
}

// DeactivateCustomer sets enabled:false on the customer. Amberflo's PUT
// replaces the whole record, so this reads the record and writes all of it
// back, fields unknown to this client included, with only enabled changed.
// If the customer is already disabled nothing is written and changed is
// false. Each step is one request; repeating the call is safe.
func (c *Client) DeactivateCustomer(ctx context.Context, id string) (cust Customer, changed bool, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("amberflo: deactivate customer %q: %w", id, err)
		}
	}()
	rec, cust, err := c.getRecord(ctx, id)
	if err != nil {
		return Customer{}, false, err
	}
	if !cust.Enabled {
		return cust, false, nil
	}

	rec["enabled"] = json.RawMessage("false")
	body, err := rec.encode()
	if err != nil {
		return Customer{}, false, fmt.Errorf("encode customer: %w", err)
	}
	a, err := c.do(ctx, "PUT", "/customers", nil, body)
	if err != nil {
		return Customer{}, false, err
	}
	// Prefer the record Amberflo answers with (it has the new updateTime);
	// fall back to the one sent if the answer is not a customer.
	if _, got, err := c.decodeRecord(a, id); err == nil {
		return got, true, nil
	}
	cust, err = rec.customer()
	return cust, true, err
}

// SetLifecycleStage moves the customer forward to stage. Stages never move
// backward: if the customer is already at stage or past it, nothing is
// written and moved is false. A current stage this client does not know is
// an error, since its place in the order is unknown. Should Amberflo
// refuse the write (4xx) because another writer moved the stage meanwhile,
// a second read that finds the customer at stage or past it makes that
// success too, with moved false; any other refusal is returned. Repeating
// the call is safe.
func (c *Client) SetLifecycleStage(ctx context.Context, id string, stage LifecycleStage) (moved bool, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("amberflo: set lifecycle stage of customer %q to %s: %w", id, stage, err)
		}
	}()
	to, ok := stageRank[stage]
	if !ok || stage == "TRAIL" {
		return false, fmt.Errorf("unknown lifecycle stage %q", stage)
	}
	_, cust, err := c.getRecord(ctx, id)
	if err != nil {
		return false, err
	}
	if cust.LifecycleStage != "" {
		from, ok := stageRank[cust.LifecycleStage]
		if !ok {
			return false, fmt.Errorf("current lifecycle stage %q is unknown", cust.LifecycleStage)
		}
		if from >= to {
			return false, nil
		}
	}

	body, err := json.Marshal(struct {
		CustomerID     string         `json:"customerId"`
		LifecycleStage LifecycleStage `json:"lifecycleStage"`
	}{id, stage})
	if err != nil {
		return false, err
	}
	if _, err := c.do(ctx, "PUT", "/customers/stage", nil, body); err != nil {
		if refusedAsContent(err) && c.reached(ctx, id, to) {
			// Another writer moved the stage between the read and the
			// write, and Amberflo refused a move that was no longer
			// forward: the customer is where it was asked to be.
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// refusedAsContent reports whether err is Amberflo refusing what a request
// asked for (400, 409, 422), as it refuses a lifecycle stage that is not a
// future one, rather than who asked or where.
func refusedAsContent(err error) bool {
	var ae *httpx.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.StatusCode {
	case http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// reached reads the customer again and reports whether its lifecycle
// stage is now known to be at rank to or past it. A failed read is false.
func (c *Client) reached(ctx context.Context, id string, to int) bool {
	_, cust, err := c.getRecord(ctx, id)
	if err != nil {
		return false
	}
	from, ok := stageRank[cust.LifecycleStage]
	return ok && from >= to
}

func unixMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
