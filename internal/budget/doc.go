// Package budget bounds the memory that requests hold together: a front end takes a request's
// share before it reads the body (or decodes a message) and gives it back once answered, and
// refuses the request when the total would pass the budget. It imports only the standard
// library.
package budget
