// Package e2e holds end-to-end tests of the order saga on the real stack
// (integration build tag): orders go in through the Orders API, and every
// assertion reads the services' own tables.
package e2e
