package store

import (
	"time"
)

// Ticket is a row of tickets.
type Ticket struct {
	ID             int64 `gorm:"primaryKey"`
	TicketTypeID   *int64
	MailboxID      *int64
	Subject        string
	RequesterEmail string
	RequesterName  string
	Status         string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	LastMessageAt  time.Time
}

// TableName maps Ticket to the tickets table.
func (Ticket) TableName() string { return "tickets" }

// TicketType is a row of ticket_types: where a mailbox's mail goes.
type TicketType struct {
	ID         int64 `gorm:"primaryKey"`
	Name       string
	Task       string
	MailboxID  *int64
	AdminEmail string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TableName maps TicketType to the ticket_types table.
func (TicketType) TableName() string { return "ticket_types" }

// TicketMessage is a row of ticket_messages: one fetched message.
type TicketMessage struct {
	ID               int64 `gorm:"primaryKey"`
	TicketID         int64
	MailboxID        int64
	SourceKey        string
	MessageID        string
	InReplyTo        string
	ReferencesHeader string
	FromEmail        string
	FromName         string
	ToAddrs          string
	CcAddrs          string
	Subject          string
	SentAt           *time.Time
	ReceivedAt       time.Time
	BodyText         string
	BodyHTML         string `gorm:"column:body_html"`
	Raw              []byte
	SizeBytes        int64
	IsAutoReply      bool
	ParseError       string
}

// TableName maps TicketMessage to the ticket_messages table.
func (TicketMessage) TableName() string { return "ticket_messages" }

// TicketAttachment is a row of ticket_attachments.
type TicketAttachment struct {
	ID              int64 `gorm:"primaryKey"`
	TicketMessageID int64
	Filename        string
	ContentType     string
	ContentID       string
	Inline          bool
	SizeBytes       int64
	SHA256          string `gorm:"column:sha256"`
	Data            []byte
}

// TableName maps TicketAttachment to the ticket_attachments table.
func (TicketAttachment) TableName() string { return "ticket_attachments" }
