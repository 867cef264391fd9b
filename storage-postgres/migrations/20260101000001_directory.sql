-- Tenants, customer companies, projects, content and memberships.
--
-- Ids are `uuid`: the service mints them from its random source, so the
-- database never generates one. Names and URLs are `text` because PostgreSQL
-- stores `text` and `varchar(n)` alike and the service validates lengths.
-- A tenant's overdraft limit is a whole number of credits (`bigint`, at
-- least zero); zero means its credit balance never goes below zero.
-- Foreign keys tie every record to its tenant and company, because the
-- service only ever writes a record after finding its parents.
-- A membership is staff or customer; a customer row names its company and
-- a staff row names none, which the CHECK on `role` and `company_id` enforces.

CREATE TABLE tenants (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    overdraft_limit bigint NOT NULL CHECK (overdraft_limit >= 0)
);

CREATE TABLE companies (
    id        uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    name      text NOT NULL
);
CREATE INDEX companies_tenant ON companies (tenant_id);

CREATE TABLE projects (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    company_id uuid NOT NULL REFERENCES companies (id),
    name       text NOT NULL,
    url        text NOT NULL
);
CREATE INDEX projects_company ON projects (tenant_id, company_id, name);

CREATE TABLE contents (
    id        uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    title     text NOT NULL,
    location  text NOT NULL
);

CREATE TABLE memberships (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    user_id      uuid NOT NULL,
    display_name text NOT NULL,
    role         text NOT NULL CHECK (role IN ('staff', 'customer')),
    company_id   uuid REFERENCES companies (id),
    PRIMARY KEY (tenant_id, user_id),
    CHECK ((role = 'customer') = (company_id IS NOT NULL))
);
