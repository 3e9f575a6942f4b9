--
-- PostgreSQL database dump
--

\restrict prAqIXzoo1K7cqN1ibS2NuhtnOsgvUypybrKvtyaslnIGks1tc67rRuaJeg8dd5

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: access_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.access_keys (
    access_key_id character varying(128) NOT NULL,
    principal_arn character varying(2048) NOT NULL,
    wrapped_secret bytea NOT NULL,
    status character varying(16) NOT NULL,
    created double precision NOT NULL
);


--
-- Name: accounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.accounts (
    account_id character varying(12) NOT NULL,
    created double precision NOT NULL
);


--
-- Name: alembic_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);


--
-- Name: aliases; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.aliases (
    account_id character varying(12) NOT NULL,
    region character varying(32) NOT NULL,
    name character varying(256) NOT NULL,
    target_key_id character varying(64) NOT NULL,
    creation_date double precision NOT NULL,
    last_updated_date double precision NOT NULL
);


--
-- Name: changes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.changes (
    seq integer NOT NULL,
    key_arn character varying(256) NOT NULL,
    changed_at double precision NOT NULL
);


--
-- Name: changes_seq_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.changes_seq_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: changes_seq_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.changes_seq_seq OWNED BY public.changes.seq;


--
-- Name: custom_key_stores; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.custom_key_stores (
    store_id character varying(24) NOT NULL,
    account_id character varying(12) NOT NULL,
    region character varying(32) NOT NULL,
    name character varying(256) NOT NULL,
    store_type character varying(32) NOT NULL,
    cluster_id character varying(24),
    trust_anchor text,
    wrapped_password bytea NOT NULL,
    connection_state character varying(16) NOT NULL,
    connection_error_code character varying(48),
    creation_date double precision NOT NULL,
    xks_uri_endpoint character varying(128),
    xks_uri_path character varying(128),
    xks_connectivity character varying(32),
    xks_access_key_id character varying(30)
);


--
-- Name: faults; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.faults (
    account_id character varying(12) NOT NULL,
    operation character varying(64) NOT NULL,
    error_code character varying(64) NOT NULL,
    rate double precision NOT NULL,
    latency_ms integer NOT NULL,
    created double precision NOT NULL
);


--
-- Name: grants; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.grants (
    grant_id character varying(64) NOT NULL,
    key_arn character varying(256) NOT NULL,
    grantee_principal character varying(256) NOT NULL,
    retiring_principal character varying(256),
    operations text NOT NULL,
    constraint_type character varying(32),
    constraint_context text,
    name character varying(256),
    issuing_account character varying(256) NOT NULL,
    creation_date double precision NOT NULL
);


--
-- Name: hsm_clusters; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.hsm_clusters (
    cluster_id character varying(24) NOT NULL,
    account_id character varying(12) NOT NULL,
    module_path text NOT NULL,
    token_label character varying(64) NOT NULL,
    trust_anchor text NOT NULL,
    hsm_count integer NOT NULL,
    softhsm boolean NOT NULL,
    created double precision NOT NULL
);


--
-- Name: identity_policies; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.identity_policies (
    principal_arn character varying(2048) NOT NULL,
    policy_name character varying(128) NOT NULL,
    document text NOT NULL,
    created double precision NOT NULL
);


--
-- Name: import_tokens; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.import_tokens (
    token_digest character varying(64) NOT NULL,
    key_arn character varying(256) NOT NULL,
    wrapping_algorithm character varying(32) NOT NULL,
    wrapping_key_spec character varying(16) NOT NULL,
    wrapped_private_key bytea NOT NULL,
    valid_to double precision NOT NULL,
    created double precision NOT NULL
);


--
-- Name: key_last_usage; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.key_last_usage (
    key_arn character varying(256) NOT NULL,
    operation character varying(64) NOT NULL,
    used double precision NOT NULL,
    event_id character varying(64) NOT NULL,
    request_id character varying(64) NOT NULL
);


--
-- Name: key_material_versions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.key_material_versions (
    key_arn character varying(256) NOT NULL,
    version integer NOT NULL,
    material_id character varying(64) NOT NULL,
    state character varying(48) NOT NULL,
    created double precision NOT NULL,
    rotation_date double precision,
    rotation_type character varying(16),
    import_state character varying(16),
    expiration_model character varying(32),
    valid_to double precision,
    description character varying(256)
);


--
-- Name: key_materials; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.key_materials (
    key_arn character varying(256) NOT NULL,
    version integer NOT NULL,
    wrapped bytea NOT NULL,
    created double precision NOT NULL
);


--
-- Name: key_usage_tracking; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.key_usage_tracking (
    id integer NOT NULL,
    started double precision NOT NULL
);


--
-- Name: keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.keys (
    arn character varying(256) NOT NULL,
    key_id character varying(64) NOT NULL,
    account_id character varying(12) NOT NULL,
    region character varying(32) NOT NULL,
    state character varying(32) NOT NULL,
    description text NOT NULL,
    key_usage character varying(32) NOT NULL,
    key_spec character varying(32) NOT NULL,
    origin character varying(32) NOT NULL,
    key_manager character varying(16) NOT NULL,
    multi_region boolean NOT NULL,
    policy text NOT NULL,
    creation_date double precision NOT NULL,
    current_version integer NOT NULL,
    deletion_date double precision,
    pending_window_days integer,
    rotation_period_days integer,
    next_rotation_date double precision,
    current_material_id character varying(64),
    expiration_model character varying(32),
    valid_to double precision,
    primary_region character varying(32),
    custom_key_store_id character varying(24),
    xks_key_id character varying(128)
);


--
-- Name: principal_tags; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.principal_tags (
    principal_arn character varying(2048) NOT NULL,
    tag_key character varying(128) NOT NULL,
    tag_value character varying(256) NOT NULL
);


--
-- Name: principals; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.principals (
    arn character varying(2048) NOT NULL,
    account_id character varying(12) NOT NULL,
    kind character varying(16) NOT NULL,
    name character varying(512) NOT NULL,
    created double precision NOT NULL,
    max_session_duration integer
);


--
-- Name: quota_values; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.quota_values (
    account_id character varying(12) NOT NULL,
    quota_name character varying(128) NOT NULL,
    value double precision NOT NULL,
    updated double precision NOT NULL
);


--
-- Name: role_sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.role_sessions (
    access_key_id character varying(128) NOT NULL,
    role_arn character varying(2048) NOT NULL,
    session_name character varying(64) NOT NULL,
    wrapped_secret bytea NOT NULL,
    token_sha256 bytea NOT NULL,
    created double precision NOT NULL,
    expiration double precision NOT NULL
);


--
-- Name: role_trust_policies; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.role_trust_policies (
    role_arn character varying(2048) NOT NULL,
    document text NOT NULL,
    updated double precision NOT NULL
);


--
-- Name: root_key_check; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.root_key_check (
    id integer NOT NULL,
    check_value bytea NOT NULL,
    recorded double precision NOT NULL
);


--
-- Name: root_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.root_keys (
    key_id character varying(16) NOT NULL,
    check_value bytea NOT NULL,
    provider character varying(16) NOT NULL,
    module character varying(1024),
    token_label character varying(64),
    key_label character varying(64),
    state character varying(16) NOT NULL,
    created double precision NOT NULL
);


--
-- Name: tags; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tags (
    key_arn character varying(256) NOT NULL,
    tag_key character varying(128) NOT NULL,
    tag_value character varying(256) NOT NULL
);


--
-- Name: changes seq; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.changes ALTER COLUMN seq SET DEFAULT nextval('public.changes_seq_seq'::regclass);


--
-- Data for Name: access_keys; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.access_keys (access_key_id, principal_arn, wrapped_secret, status, created) FROM stdin;
AKIAWUGSTAZ3YMSS6SDC	arn:aws:iam::111122223333:user/admin	\\x0164d3401b6c9a83fa3bdc94cbadb65723da635b680b02f4b83ae4582ce46d81d6045683f5ab47e850277e264d0876e9da65f455a6d32843493fc744af8e8a6d77b279fc5e	Active	1796583187.577654
\.


--
-- Data for Name: accounts; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.accounts (account_id, created) FROM stdin;
111122223333	1796583187.559256
\.


--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.alembic_version (version_num) FROM stdin;
0013
\.


--
-- Data for Name: aliases; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.aliases (account_id, region, name, target_key_id, creation_date, last_updated_date) FROM stdin;
111122223333	us-east-1	alias/vector-symmetric	2aebaa99-f5ae-4bf5-8676-ba9998309c5a	1796583187.902737	1796583187.902737
111122223333	us-east-1	alias/vector-rsa	7ae70122-f485-4575-8472-ebcf3c8f6a2c	1796583188.612759	1796583188.612759
111122223333	us-east-1	alias/vector-ecdsa	14c7f09b-5e63-4268-8db6-1f0083ae4441	1796583188.647333	1796583188.647333
111122223333	us-east-1	alias/vector-ed25519	e1b6abb6-71de-4579-b1e0-4fbb491479dc	1796583188.771204	1796583188.771204
111122223333	us-east-1	alias/vector-hmac	c409d7a1-4df9-485e-a6ab-fb37cb26d225	1796583188.908445	1796583188.908445
111122223333	us-east-1	alias/vector-disabled	6c823564-8eeb-4afd-8197-9f24ce2aa2f7	1796583188.980543	1796583188.980543
\.


--
-- Data for Name: changes; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.changes (seq, key_arn, changed_at) FROM stdin;
1	arn:aws:iam::111122223333:user/admin	1796583187.57024
2	arn:aws:kms:us-east-1:111122223333:alias/vector-symmetric	1796583187.902737
3	arn:aws:kms:us-east-1:111122223333:key/2aebaa99-f5ae-4bf5-8676-ba9998309c5a	1796583187.951501
4	arn:aws:kms:us-east-1:111122223333:key/2aebaa99-f5ae-4bf5-8676-ba9998309c5a	1796583188.010388
5	arn:aws:kms:us-east-1:111122223333:key/2aebaa99-f5ae-4bf5-8676-ba9998309c5a	1796583188.079319
6	arn:aws:kms:us-east-1:111122223333:alias/vector-rsa	1796583188.612759
7	arn:aws:kms:us-east-1:111122223333:alias/vector-ecdsa	1796583188.647333
8	arn:aws:kms:us-east-1:111122223333:alias/vector-ed25519	1796583188.771204
9	arn:aws:kms:us-east-1:111122223333:alias/vector-hmac	1796583188.908445
10	arn:aws:kms:us-east-1:111122223333:alias/vector-disabled	1796583188.980543
11	arn:aws:kms:us-east-1:111122223333:key/6c823564-8eeb-4afd-8197-9f24ce2aa2f7	1796583189.034917
\.


--
-- Data for Name: custom_key_stores; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.custom_key_stores (store_id, account_id, region, name, store_type, cluster_id, trust_anchor, wrapped_password, connection_state, connection_error_code, creation_date, xks_uri_endpoint, xks_uri_path, xks_connectivity, xks_access_key_id) FROM stdin;
\.


--
-- Data for Name: faults; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.faults (account_id, operation, error_code, rate, latency_ms, created) FROM stdin;
\.


--
-- Data for Name: grants; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.grants (grant_id, key_arn, grantee_principal, retiring_principal, operations, constraint_type, constraint_context, name, issuing_account, creation_date) FROM stdin;
dbc5456f5d39b2bce0f63a9b9d0c7a23598ac0212a4dbcef66d9cc0d56d61fd1	arn:aws:kms:us-east-1:111122223333:key/2aebaa99-f5ae-4bf5-8676-ba9998309c5a	arn:aws:iam::111122223333:user/vector-grantee	\N	["Decrypt", "Encrypt"]	\N	\N	vector	arn:aws:iam::111122223333:root	1796583188.010388
\.


--
-- Data for Name: hsm_clusters; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.hsm_clusters (cluster_id, account_id, module_path, token_label, trust_anchor, hsm_count, softhsm, created) FROM stdin;
\.


--
-- Data for Name: identity_policies; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.identity_policies (principal_arn, policy_name, document, created) FROM stdin;
arn:aws:iam::111122223333:user/admin	strongroom-admin	{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}	1796583187.57024
\.


--
-- Data for Name: import_tokens; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.import_tokens (token_digest, key_arn, wrapping_algorithm, wrapping_key_spec, wrapped_private_key, valid_to, created) FROM stdin;
\.


--
-- Data for Name: key_last_usage; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.key_last_usage (key_arn, operation, used, event_id, request_id) FROM stdin;
arn:aws:kms:us-east-1:111122223333:key/2aebaa99-f5ae-4bf5-8676-ba9998309c5a	GenerateDataKey	1796583188.115933	87dd8a6c-c753-48a3-b22b-29c13f6d903d	58a25e3c-d69d-47f0-902e-6491c944fa52
arn:aws:kms:us-east-1:111122223333:key/7ae70122-f485-4575-8472-ebcf3c8f6a2c	Encrypt	1796583188.620587	f283cfa1-5a6f-488d-b773-322406039a91	4725d667-9d0e-4ee6-a25e-b95e67d86c24
arn:aws:kms:us-east-1:111122223333:key/14c7f09b-5e63-4268-8db6-1f0083ae4441	Sign	1796583188.682407	26166c51-06a0-4e8c-ade1-3a285f2f11e4	7b2a0117-e169-4c8c-bc27-c7ec2162f89c
arn:aws:kms:us-east-1:111122223333:key/e1b6abb6-71de-4579-b1e0-4fbb491479dc	Sign	1796583188.7883	42a07093-a4c0-41b5-b7a7-8a19434235fa	c15834e4-420c-483f-af35-aaea055808a7
arn:aws:kms:us-east-1:111122223333:key/c409d7a1-4df9-485e-a6ab-fb37cb26d225	GenerateMac	1796583188.934382	0f6453a6-cb75-4f4d-8215-3a86329cec6d	51b81304-604a-40c6-b25e-220cb67f767d
arn:aws:kms:us-east-1:111122223333:key/6c823564-8eeb-4afd-8197-9f24ce2aa2f7	Encrypt	1796583189.003507	7704eb90-5abe-4e52-823a-5a31bbeb0493	ecc66ce8-5c16-4cb7-a8fb-51a49ae0a7f0
\.


--
-- Data for Name: key_material_versions; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.key_material_versions (key_arn, version, material_id, state, created, rotation_date, rotation_type, import_state, expiration_model, valid_to, description) FROM stdin;
arn:aws:kms:us-east-1:111122223333:key/2aebaa99-f5ae-4bf5-8676-ba9998309c5a	1	9cdffc1e37779866f4f2efd5dcaa409f2e8c9a42bfa1dac67d7896f4d0463e91	NON_CURRENT	1796583187.836788	\N	\N	\N	\N	\N	\N
arn:aws:kms:us-east-1:111122223333:key/2aebaa99-f5ae-4bf5-8676-ba9998309c5a	2	1d42f12c17ab91e8385a7f4145ef9751faa3c3a24ef0f4e71bb04dbc30628f96	CURRENT	1796583188.079319	1796583188.079319	ON_DEMAND	\N	\N	\N	\N
arn:aws:kms:us-east-1:111122223333:key/7ae70122-f485-4575-8472-ebcf3c8f6a2c	1	82dbdaf6b311f3b55b36fab82102101e86b17f02de4a2fe41f9dd94752dd997d	CURRENT	1796583188.122746	\N	\N	\N	\N	\N	\N
arn:aws:kms:us-east-1:111122223333:key/14c7f09b-5e63-4268-8db6-1f0083ae4441	1	2ed8c6b9cb458fe1693d7e2ddc8c78ea0de57ae72a40f869e8972e18367b2b2c	CURRENT	1796583188.624505	\N	\N	\N	\N	\N	\N
arn:aws:kms:us-east-1:111122223333:key/e1b6abb6-71de-4579-b1e0-4fbb491479dc	1	68af439857923b1483113d935d323c84fe92bf6e83e690934cbfcba533ef864a	CURRENT	1796583188.719454	\N	\N	\N	\N	\N	\N
arn:aws:kms:us-east-1:111122223333:key/c409d7a1-4df9-485e-a6ab-fb37cb26d225	1	e592e0fac168910ed155244d627294de2969e56a1bbff8dad20e3db407e31810	CURRENT	1796583188.833379	\N	\N	\N	\N	\N	\N
arn:aws:kms:us-east-1:111122223333:key/6c823564-8eeb-4afd-8197-9f24ce2aa2f7	1	3c8341a14d43beab5e36181c49203a9e12935cca1bea1f970c820bd6dc58597e	CURRENT	1796583188.951855	\N	\N	\N	\N	\N	\N
\.


--
-- Data for Name: key_materials; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.key_materials (key_arn, version, wrapped, created) FROM stdin;
arn:aws:kms:us-east-1:111122223333:key/2aebaa99-f5ae-4bf5-8676-ba9998309c5a	1	\\x01c706e91d05d9b639d70cbc60453da551b3c18fe678cf47739366c53ea10d2997b3692ee3dc3b5331282e188934b082ab56d4e886d8cc10e0e5a108e7	1796583187.836788
arn:aws:kms:us-east-1:111122223333:key/2aebaa99-f5ae-4bf5-8676-ba9998309c5a	2	\\x01c48357b01f403183516012887948feab60e4f4f07928a87965d5fb02e8dd869b80f0aa2a6543064ff64836dab1ef4a653e732eea75434dedf631c08c	1796583188.079319
arn:aws:kms:us-east-1:111122223333:key/7ae70122-f485-4575-8472-ebcf3c8f6a2c	1	\\x0188823aafa0422f7c1b23a3488dcefc6172b138f25f7fac7e1c3ef6a16b7cd5c23f7c52fa3b9f1529256f982571809eba0e17515e14ffb2f4cafa1896b63ebf25b5dd33ad22ab26362b04f6b028f8497a1cbabb3baec82b2ac992b319ee8d8f9aebc3d73630064b7e3e76ad364733bbb139e9d3a6aa06a87b376ce2075c3e02329e201ad2b21d7a586c6889ea3813364f7d283baf282e7f51789f1bd4dd0caefd08ce0b8c3846154b11b0ec38f9fec1a14ab28036011dab1fb6481a74f3d911cfc0ce9d54abf9c33ff683cc7eccf1293be3f8b2c84af004cff39056551d98c06c6d580c16894e0b1ff4ae0aab07397f7447289016d6ff1a47f5b968808ce97708343f5fadbe1ac638eadc49f20d5cdbcf51e77e6cccef07c1310568a4594cf759a5f97f89ab5cc93efffe645d4881bf87c47b6df560120cd37420ba65f190fff29acca2e4cc1a9e05b9c94e2ac80437edd019c04bf61644818de3d09313380197ed4c4cb371180a361b5d9ce0bf5d22cca1dca6e06d1f258d17d2aa0aa02b7f740dd2c2484712ec08dacb43482e0ca6aef67b7acdbca206335840ba26a7ac111f7edc99186d945bc070aa1689cade7268dcc348aa921542df71b503ed3e8c9def586efefcdbbe5599204b2d07acdf8b733b5562ed22c49b62d8f9bc162c1663e88436d9c91ef50577cc0f0fba7c30748a2d0cf323c6553a2afaec66e0397dd5d6fcc85e4998312ccd8befdabacf18864d0bea7c67847ab3af2682585003a2ea9f37fc0534eb513529e6770495cd00a81ccf85def4b90a448f9ff246b06fbaac7881813ac3583bb8a03945a0b7c3229a138241ccd0f78f437a5615ad154296a415b1f11084218518132d7515e3739b1f17e969dfe5a6e8bdd051dbc4b3747ed33976df79460f181ea501305829a06ae788133ef9f3c79ea56357370f1c02c89f3ed059e94aeb0734c744031aca047c497fc6acd2063cad7a30c69df8c89e2560e35fdd06ca02432f03937031934db46a9a881a3fd53b1836fdf912547da4c9dec6843de2866d87f178845d0c3c8f93bdd21a92307352be15a4bee008f2843ca0fd1d13a8fcba034ddcaac8cd5151564806eefe1944a8333532e8e586689ae522a5829b2b54568b07df461898fb9315032000d30677f981f2ca21d496467e6f85ea0b4ddf487fe2173888f0d1511166d91dde8487b9a5d106cc2b39105c5df264d36aed2e675daab5c3f37015dde2e1f354e66e6f31e329e21be389b06dcdb10de4ac71f340d24b8e7493eb1a6b12a80e5402b18cc3fc6ce09472bf737546293ec08a997844a6210916ccd0bd296ef69f1dd22eaba341706a14eac1d5777022ae4bd32a6365d0747db6067ae3b69b2b4d3c38e5adc572ba52c6ee0edcc3469078995dc9817ec866da7eda5b9bb667563897fe6af663e0bdb4a3a4e74db7909908e29ba81dc0faff09f7460e67905717159966b9dff437d71dec3436e0eca26883484af35ad12949dc067a0c193641c8958d394b465d868223b1310e310115808af3dfcdc452ff03eae66d1294b38dcdfa49ae4825a5f483108ee03181ea06458978d3d3ede5203658ed2e105db7c041a8be41110313623dbbdec1f9c18151fe9803fe385b31e2f4d4b3bc4322e98df67f2f2fc38d333a13fb4c2de96b4b4b9e834f8ebea5ea67f5be55a528882da71de7fe38e40aebfeb4201943db3abe55e6fdd603694993efe8037b40841e7a6ad6b7b33aea37ad3ccc7dc36cda18ecc7	1796583188.122746
arn:aws:kms:us-east-1:111122223333:key/14c7f09b-5e63-4268-8db6-1f0083ae4441	1	\\x01be2eaea101b6adf907bab50b0c6654cc27401297d0c57e4dcf11c86b98ae2eb2d40f742e5b21f2e3e9ec02e829c8cbf18304a55e3942822ae8a6253cbfe177cd176471cc6e899eb77b3add76cbf80d51895724e638f209d2f99ed642cebdd200f89f87c9c68159e1434b721e0acb0fcc1f32c9e6a5f32fee4b3d102544e6b714285c9c40c32e77a6696c4171daf3383b217a3a68882434d93ce830934bc234c61ae33ce487a2	1796583188.624505
arn:aws:kms:us-east-1:111122223333:key/e1b6abb6-71de-4579-b1e0-4fbb491479dc	1	\\x01acb5a5a5c3cf36e51ad687d0adb483d6f4fd35b6a99fdf45c8cf5ff40d3a641c65276d1c1a2ba0a058c611ff94772c825c0aefd155255cf63acf3b966ea302efdb6579eededc549d168e2f8f	1796583188.719454
arn:aws:kms:us-east-1:111122223333:key/c409d7a1-4df9-485e-a6ab-fb37cb26d225	1	\\x01443b0a74005aeade6e698cd405e1e117e101341b4a7697e627d5605139ee63ceffead2eba4992ca27006cd90e6c9205ab65811f85764f2c2539b7ec5	1796583188.833379
arn:aws:kms:us-east-1:111122223333:key/6c823564-8eeb-4afd-8197-9f24ce2aa2f7	1	\\x0148f7035e509fc260ec900154f627cec91ef0adeb82d68f2f1bbbfebcf920ee5ba6c65c35a6f9e2b0c66a90bee59b45895781c49342714e072bef4d87	1796583188.951855
\.


--
-- Data for Name: key_usage_tracking; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.key_usage_tracking (id, started) FROM stdin;
1	1796583187.428304
\.


--
-- Data for Name: keys; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.keys (arn, key_id, account_id, region, state, description, key_usage, key_spec, origin, key_manager, multi_region, policy, creation_date, current_version, deletion_date, pending_window_days, rotation_period_days, next_rotation_date, current_material_id, expiration_model, valid_to, primary_region, custom_key_store_id, xks_key_id) FROM stdin;
arn:aws:kms:us-east-1:111122223333:key/6c823564-8eeb-4afd-8197-9f24ce2aa2f7	6c823564-8eeb-4afd-8197-9f24ce2aa2f7	111122223333	us-east-1	Disabled	upgrade vector disabled	ENCRYPT_DECRYPT	SYMMETRIC_DEFAULT	AWS_KMS	CUSTOMER	f	{\n  "Version": "2012-10-17",\n  "Id": "key-default-1",\n  "Statement": [\n    {\n      "Sid": "Enable IAM User Permissions",\n      "Effect": "Allow",\n      "Principal": {\n        "AWS": "arn:aws:iam::111122223333:root"\n      },\n      "Action": "kms:*",\n      "Resource": "*"\n    }\n  ]\n}	1796583188.951855	1	\N	\N	\N	\N	3c8341a14d43beab5e36181c49203a9e12935cca1bea1f970c820bd6dc58597e	\N	\N	\N	\N	\N
arn:aws:kms:us-east-1:111122223333:key/2aebaa99-f5ae-4bf5-8676-ba9998309c5a	2aebaa99-f5ae-4bf5-8676-ba9998309c5a	111122223333	us-east-1	Enabled	upgrade vector symmetric	ENCRYPT_DECRYPT	SYMMETRIC_DEFAULT	AWS_KMS	CUSTOMER	f	{"Version": "2012-10-17", "Statement": [{"Sid": "VectorPolicy", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]}	1796583187.836788	2	\N	\N	\N	\N	1d42f12c17ab91e8385a7f4145ef9751faa3c3a24ef0f4e71bb04dbc30628f96	\N	\N	\N	\N	\N
arn:aws:kms:us-east-1:111122223333:key/7ae70122-f485-4575-8472-ebcf3c8f6a2c	7ae70122-f485-4575-8472-ebcf3c8f6a2c	111122223333	us-east-1	Enabled	upgrade vector rsa	ENCRYPT_DECRYPT	RSA_2048	AWS_KMS	CUSTOMER	f	{\n  "Version": "2012-10-17",\n  "Id": "key-default-1",\n  "Statement": [\n    {\n      "Sid": "Enable IAM User Permissions",\n      "Effect": "Allow",\n      "Principal": {\n        "AWS": "arn:aws:iam::111122223333:root"\n      },\n      "Action": "kms:*",\n      "Resource": "*"\n    }\n  ]\n}	1796583188.122746	1	\N	\N	\N	\N	82dbdaf6b311f3b55b36fab82102101e86b17f02de4a2fe41f9dd94752dd997d	\N	\N	\N	\N	\N
arn:aws:kms:us-east-1:111122223333:key/14c7f09b-5e63-4268-8db6-1f0083ae4441	14c7f09b-5e63-4268-8db6-1f0083ae4441	111122223333	us-east-1	Enabled	upgrade vector ecdsa	SIGN_VERIFY	ECC_NIST_P256	AWS_KMS	CUSTOMER	f	{\n  "Version": "2012-10-17",\n  "Id": "key-default-1",\n  "Statement": [\n    {\n      "Sid": "Enable IAM User Permissions",\n      "Effect": "Allow",\n      "Principal": {\n        "AWS": "arn:aws:iam::111122223333:root"\n      },\n      "Action": "kms:*",\n      "Resource": "*"\n    }\n  ]\n}	1796583188.624505	1	\N	\N	\N	\N	2ed8c6b9cb458fe1693d7e2ddc8c78ea0de57ae72a40f869e8972e18367b2b2c	\N	\N	\N	\N	\N
arn:aws:kms:us-east-1:111122223333:key/e1b6abb6-71de-4579-b1e0-4fbb491479dc	e1b6abb6-71de-4579-b1e0-4fbb491479dc	111122223333	us-east-1	Enabled	upgrade vector ed25519	SIGN_VERIFY	ECC_NIST_EDWARDS25519	AWS_KMS	CUSTOMER	f	{\n  "Version": "2012-10-17",\n  "Id": "key-default-1",\n  "Statement": [\n    {\n      "Sid": "Enable IAM User Permissions",\n      "Effect": "Allow",\n      "Principal": {\n        "AWS": "arn:aws:iam::111122223333:root"\n      },\n      "Action": "kms:*",\n      "Resource": "*"\n    }\n  ]\n}	1796583188.719454	1	\N	\N	\N	\N	68af439857923b1483113d935d323c84fe92bf6e83e690934cbfcba533ef864a	\N	\N	\N	\N	\N
arn:aws:kms:us-east-1:111122223333:key/c409d7a1-4df9-485e-a6ab-fb37cb26d225	c409d7a1-4df9-485e-a6ab-fb37cb26d225	111122223333	us-east-1	Enabled	upgrade vector hmac	GENERATE_VERIFY_MAC	HMAC_256	AWS_KMS	CUSTOMER	f	{\n  "Version": "2012-10-17",\n  "Id": "key-default-1",\n  "Statement": [\n    {\n      "Sid": "Enable IAM User Permissions",\n      "Effect": "Allow",\n      "Principal": {\n        "AWS": "arn:aws:iam::111122223333:root"\n      },\n      "Action": "kms:*",\n      "Resource": "*"\n    }\n  ]\n}	1796583188.833379	1	\N	\N	\N	\N	e592e0fac168910ed155244d627294de2969e56a1bbff8dad20e3db407e31810	\N	\N	\N	\N	\N
\.


--
-- Data for Name: principal_tags; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.principal_tags (principal_arn, tag_key, tag_value) FROM stdin;
\.


--
-- Data for Name: principals; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.principals (arn, account_id, kind, name, created, max_session_duration) FROM stdin;
arn:aws:iam::111122223333:root	111122223333	root	root	1796583187.559256	\N
arn:aws:iam::111122223333:user/admin	111122223333	user	admin	1796583187.568893	\N
\.


--
-- Data for Name: quota_values; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.quota_values (account_id, quota_name, value, updated) FROM stdin;
\.


--
-- Data for Name: role_sessions; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.role_sessions (access_key_id, role_arn, session_name, wrapped_secret, token_sha256, created, expiration) FROM stdin;
\.


--
-- Data for Name: role_trust_policies; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.role_trust_policies (role_arn, document, updated) FROM stdin;
\.


--
-- Data for Name: root_key_check; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.root_key_check (id, check_value, recorded) FROM stdin;
1	\\x8703fa784df10ad7dfb6691a7480bc253553752f1db3b7f50d4e5fd3a4fc4e2e	1796583187.550216
\.


--
-- Data for Name: root_keys; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.root_keys (key_id, check_value, provider, module, token_label, key_label, state, created) FROM stdin;
\.


--
-- Data for Name: tags; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.tags (key_arn, tag_key, tag_value) FROM stdin;
arn:aws:kms:us-east-1:111122223333:key/2aebaa99-f5ae-4bf5-8676-ba9998309c5a	vector	symmetric
arn:aws:kms:us-east-1:111122223333:key/7ae70122-f485-4575-8472-ebcf3c8f6a2c	vector	rsa
arn:aws:kms:us-east-1:111122223333:key/14c7f09b-5e63-4268-8db6-1f0083ae4441	vector	ecdsa
arn:aws:kms:us-east-1:111122223333:key/e1b6abb6-71de-4579-b1e0-4fbb491479dc	vector	ed25519
arn:aws:kms:us-east-1:111122223333:key/c409d7a1-4df9-485e-a6ab-fb37cb26d225	vector	hmac
arn:aws:kms:us-east-1:111122223333:key/6c823564-8eeb-4afd-8197-9f24ce2aa2f7	vector	disabled
\.


--
-- Name: changes_seq_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.changes_seq_seq', 11, true);


--
-- Name: access_keys access_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.access_keys
    ADD CONSTRAINT access_keys_pkey PRIMARY KEY (access_key_id);


--
-- Name: accounts accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (account_id);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: aliases aliases_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.aliases
    ADD CONSTRAINT aliases_pkey PRIMARY KEY (account_id, region, name);


--
-- Name: changes changes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.changes
    ADD CONSTRAINT changes_pkey PRIMARY KEY (seq);


--
-- Name: custom_key_stores custom_key_stores_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.custom_key_stores
    ADD CONSTRAINT custom_key_stores_pkey PRIMARY KEY (store_id);


--
-- Name: faults faults_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.faults
    ADD CONSTRAINT faults_pkey PRIMARY KEY (account_id, operation);


--
-- Name: grants grants_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.grants
    ADD CONSTRAINT grants_pkey PRIMARY KEY (grant_id);


--
-- Name: hsm_clusters hsm_clusters_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hsm_clusters
    ADD CONSTRAINT hsm_clusters_pkey PRIMARY KEY (cluster_id);


--
-- Name: identity_policies identity_policies_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.identity_policies
    ADD CONSTRAINT identity_policies_pkey PRIMARY KEY (principal_arn, policy_name);


--
-- Name: import_tokens import_tokens_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.import_tokens
    ADD CONSTRAINT import_tokens_pkey PRIMARY KEY (token_digest);


--
-- Name: key_last_usage key_last_usage_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.key_last_usage
    ADD CONSTRAINT key_last_usage_pkey PRIMARY KEY (key_arn);


--
-- Name: key_material_versions key_material_versions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.key_material_versions
    ADD CONSTRAINT key_material_versions_pkey PRIMARY KEY (key_arn, version);


--
-- Name: key_materials key_materials_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.key_materials
    ADD CONSTRAINT key_materials_pkey PRIMARY KEY (key_arn, version);


--
-- Name: key_usage_tracking key_usage_tracking_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.key_usage_tracking
    ADD CONSTRAINT key_usage_tracking_pkey PRIMARY KEY (id);


--
-- Name: keys keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.keys
    ADD CONSTRAINT keys_pkey PRIMARY KEY (arn);


--
-- Name: principal_tags principal_tags_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.principal_tags
    ADD CONSTRAINT principal_tags_pkey PRIMARY KEY (principal_arn, tag_key);


--
-- Name: principals principals_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.principals
    ADD CONSTRAINT principals_pkey PRIMARY KEY (arn);


--
-- Name: quota_values quota_values_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.quota_values
    ADD CONSTRAINT quota_values_pkey PRIMARY KEY (account_id, quota_name);


--
-- Name: role_sessions role_sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.role_sessions
    ADD CONSTRAINT role_sessions_pkey PRIMARY KEY (access_key_id);


--
-- Name: role_trust_policies role_trust_policies_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.role_trust_policies
    ADD CONSTRAINT role_trust_policies_pkey PRIMARY KEY (role_arn);


--
-- Name: root_key_check root_key_check_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.root_key_check
    ADD CONSTRAINT root_key_check_pkey PRIMARY KEY (id);


--
-- Name: root_keys root_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.root_keys
    ADD CONSTRAINT root_keys_pkey PRIMARY KEY (key_id);


--
-- Name: tags tags_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tags
    ADD CONSTRAINT tags_pkey PRIMARY KEY (key_arn, tag_key);


--
-- Name: custom_key_stores uq_custom_key_stores_name; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.custom_key_stores
    ADD CONSTRAINT uq_custom_key_stores_name UNIQUE (account_id, region, name);


--
-- Name: ix_aliases_target; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_aliases_target ON public.aliases USING btree (account_id, region, target_key_id);


--
-- Name: ix_custom_key_stores_account_region; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_custom_key_stores_account_region ON public.custom_key_stores USING btree (account_id, region, creation_date);


--
-- Name: ix_custom_key_stores_cluster; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_custom_key_stores_cluster ON public.custom_key_stores USING btree (cluster_id);


--
-- Name: ix_grants_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_grants_key ON public.grants USING btree (key_arn, creation_date, grant_id);


--
-- Name: ix_grants_retiring; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_grants_retiring ON public.grants USING btree (retiring_principal, creation_date, grant_id);


--
-- Name: ix_hsm_clusters_account; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_hsm_clusters_account ON public.hsm_clusters USING btree (account_id, cluster_id);


--
-- Name: ix_import_tokens_key_arn; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_import_tokens_key_arn ON public.import_tokens USING btree (key_arn);


--
-- Name: ix_import_tokens_valid_to; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_import_tokens_valid_to ON public.import_tokens USING btree (valid_to);


--
-- Name: ix_key_material_versions_valid_to; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_key_material_versions_valid_to ON public.key_material_versions USING btree (valid_to);


--
-- Name: ix_keys_account_key_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_keys_account_key_id ON public.keys USING btree (account_id, key_id);


--
-- Name: ix_keys_account_region; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_keys_account_region ON public.keys USING btree (account_id, region, creation_date);


--
-- Name: ix_keys_custom_key_store_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_keys_custom_key_store_id ON public.keys USING btree (custom_key_store_id);


--
-- Name: ix_keys_deletion_date; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_keys_deletion_date ON public.keys USING btree (deletion_date);


--
-- Name: ix_keys_next_rotation_date; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_keys_next_rotation_date ON public.keys USING btree (next_rotation_date);


--
-- Name: ix_keys_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_keys_state ON public.keys USING btree (state);


--
-- Name: ix_role_sessions_expiration; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_role_sessions_expiration ON public.role_sessions USING btree (expiration);


--
-- Name: uq_keys_store_xks_key_id; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX uq_keys_store_xks_key_id ON public.keys USING btree (custom_key_store_id, xks_key_id);


--
-- Name: access_keys access_keys_principal_arn_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.access_keys
    ADD CONSTRAINT access_keys_principal_arn_fkey FOREIGN KEY (principal_arn) REFERENCES public.principals(arn);


--
-- Name: custom_key_stores custom_key_stores_cluster_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.custom_key_stores
    ADD CONSTRAINT custom_key_stores_cluster_id_fkey FOREIGN KEY (cluster_id) REFERENCES public.hsm_clusters(cluster_id);


--
-- Name: grants grants_key_arn_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.grants
    ADD CONSTRAINT grants_key_arn_fkey FOREIGN KEY (key_arn) REFERENCES public.keys(arn);


--
-- Name: identity_policies identity_policies_principal_arn_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.identity_policies
    ADD CONSTRAINT identity_policies_principal_arn_fkey FOREIGN KEY (principal_arn) REFERENCES public.principals(arn);


--
-- Name: key_material_versions key_material_versions_key_arn_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.key_material_versions
    ADD CONSTRAINT key_material_versions_key_arn_fkey FOREIGN KEY (key_arn) REFERENCES public.keys(arn);


--
-- Name: key_materials key_materials_key_arn_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.key_materials
    ADD CONSTRAINT key_materials_key_arn_fkey FOREIGN KEY (key_arn) REFERENCES public.keys(arn);


--
-- Name: principal_tags principal_tags_principal_arn_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.principal_tags
    ADD CONSTRAINT principal_tags_principal_arn_fkey FOREIGN KEY (principal_arn) REFERENCES public.principals(arn);


--
-- Name: principals principals_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.principals
    ADD CONSTRAINT principals_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.accounts(account_id);


--
-- Name: role_sessions role_sessions_role_arn_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.role_sessions
    ADD CONSTRAINT role_sessions_role_arn_fkey FOREIGN KEY (role_arn) REFERENCES public.principals(arn);


--
-- Name: role_trust_policies role_trust_policies_role_arn_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.role_trust_policies
    ADD CONSTRAINT role_trust_policies_role_arn_fkey FOREIGN KEY (role_arn) REFERENCES public.principals(arn);


--
-- Name: tags tags_key_arn_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tags
    ADD CONSTRAINT tags_key_arn_fkey FOREIGN KEY (key_arn) REFERENCES public.keys(arn);


--
-- PostgreSQL database dump complete
--

\unrestrict prAqIXzoo1K7cqN1ibS2NuhtnOsgvUypybrKvtyaslnIGks1tc67rRuaJeg8dd5

