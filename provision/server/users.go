package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
)

// User is one MLflow login as the server lists it.
type User struct {
	Name  string `json:"username"`
	Admin bool   `json:"is_admin"`
}

// ErrUserExists is a create of a name the server already has;
// ErrNoSuchUser an update or delete of one it lacks.
var (
	ErrUserExists = errors.New("the MLflow user exists already")
	ErrNoSuchUser = errors.New("no such MLflow user")
)

// CreateUser makes a non-admin user (the client must sign in as an admin).
func (c *Client) CreateUser(ctx context.Context, name, password string) error {
	err := c.do(ctx, http.MethodPost, "/api/2.0/mlflow/users/create", map[string]string{"username": name, "password": password}, true, nil)
	return userError(err, "RESOURCE_ALREADY_EXISTS", ErrUserExists)
}

// SetPassword sets another user's password as an admin, who needs no
// current password (a user's own change is ChangePassword).
func (c *Client) SetPassword(ctx context.Context, name, password string) error {
	err := c.do(ctx, http.MethodPatch, "/api/2.0/mlflow/users/update-password", map[string]string{"username": name, "password": password}, true, nil)
	return userError(err, "RESOURCE_DOES_NOT_EXIST", ErrNoSuchUser)
}

// DeleteUser removes a user; one the server lacks is ErrNoSuchUser.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	err := c.do(ctx, http.MethodDelete, "/api/2.0/mlflow/users/delete", map[string]string{"username": name}, true, nil)
	return userError(err, "RESOURCE_DOES_NOT_EXIST", ErrNoSuchUser)
}

// ListUsers lists the server's users by name.
func (c *Client) ListUsers(ctx context.Context) ([]User, error) {
	var out struct {
		Users []User `json:"users"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/2.0/mlflow/users/list", nil, true, &out); err != nil {
		return nil, err
	}
	slices.SortFunc(out.Users, func(a, b User) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out.Users, nil
}

// LoginWorks reports whether the server accepts the client's user and
// password (false on 401); other failures are errors.
func (c *Client) LoginWorks(ctx context.Context) (bool, error) {
	err := c.get(ctx, "users/get", url.Values{"username": {c.User}}, nil)
	var he *httpError
	if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
		return false, nil
	}
	return err == nil, err
}

// userError turns MLflow's error code into sentinel, keeping the answer's text.
func userError(err error, code string, sentinel error) error {
	var he *httpError
	if errors.As(err, &he) && he.code == code {
		return fmt.Errorf("%w: %w", sentinel, err)
	}
	return err
}
