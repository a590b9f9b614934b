/* freeoffload._yamlfast: a YAML file straight into LocMap/LocList in one C pass.
 *
 * Why: the facade's loader (yamlfile.py) builds its values from libyaml's events in Python,
 * about 4 us per event in all, half of it PyYAML making the event object; a 10,000-node
 * CR-map is 574k events (2.2 s), which libyaml itself parses in 0.25 s. Here libyaml is driven
 * directly and the same values are built as the events arrive, with no event objects.
 *
 * What: one document of untagged nodes without anchors, aliases, merge keys (<<), duplicate
 * keys or collection keys: what people and our own dump_topology write. Anything else, and any
 * libyaml error, makes load() return NotImplemented; the caller then uses the Python loader,
 * which reports every problem with its location exactly as before.
 *
 * Values: as yaml.safe_load gives them. Quoted scalars are strings; plain scalars are resolved
 * by PyYAML's YAML 1.1 implicit resolvers: null, bool, decimal ints without '_' or leading
 * zeros and plain floats ([-+]d+.d*, exponent with a sign) here; any other plain text whose
 * first character some resolver accepts (-+.0-9) goes to the Python resolver passed to load(),
 * once per distinct text. Texts no resolver accepts are strings.
 *
 * Locations: a container's own 1-based (line, col), then those of its keys and values (key
 * line, key col, value line, value col per key) or of its items, are packed as uint32 into
 * bytes and kept in its `_marks` slot: (source, keys tuple, bytes) for a mapping,
 * (source, bytes) for a sequence. yamlfile.py turns them into loc, key_locs/value_locs or
 * item_locs on first use: a file without problems never makes its ~250k Location objects.
 *
 * This is the facade's own extension module, not one of the C cores (those never include
 * Python.h).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <yaml.h>

/* Set once by configure(): the facade's classes. */
static PyTypeObject *loc_map, *loc_list;
static PyObject *str_marks, *empty_tuple;

enum { OK = 0, FAILED = -1, FALLBACK = 1 };

typedef struct {
    uint32_t *v;
    size_t n, cap;
} Marks;

typedef struct {
    PyObject *obj; /* the LocMap or LocList being filled */
    PyObject *key; /* a mapping's key waiting for its value, or NULL */
    int is_map;
    uint32_t line, col; /* where the container starts (1-based) */
    Marks marks;        /* kept allocated when the frame is popped, for the next one */
} Frame;

typedef struct {
    PyObject *source;  /* the file name for every Location */
    PyObject *resolve; /* Python: plain text -> value, for the rarer plain scalars */
    PyObject *cache;   /* plain text -> value that resolve returned */
    PyObject *keys;    /* key text -> one shared str object */
    Frame *stack;
    size_t depth, cap;
    PyObject *root;
} Builder;

static int marks_push(Marks *m, uint32_t a, uint32_t b)
{
    if (m->n + 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        uint32_t *v = PyMem_Realloc(m->v, cap * sizeof *v);
        if (!v) {
            PyErr_NoMemory();
            return FAILED;
        }
        m->v = v;
        m->cap = cap;
    }
    m->v[m->n++] = a;
    m->v[m->n++] = b;
    return OK;
}

/* ---- plain scalars: YAML 1.1 as PyYAML resolves them ------------------------------------ */

static const struct {
    const char *text;
    int value; /* 0 false, 1 true, 2 null */
} WORDS[] = {
    {"null", 2}, {"Null", 2}, {"NULL", 2}, {"~", 2},
    {"yes", 1}, {"Yes", 1}, {"YES", 1}, {"true", 1}, {"True", 1}, {"TRUE", 1},
    {"on", 1}, {"On", 1}, {"ON", 1},
    {"no", 0}, {"No", 0}, {"NO", 0}, {"false", 0}, {"False", 0}, {"FALSE", 0},
    {"off", 0}, {"Off", 0}, {"OFF", 0},
};

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* A text some resolver may claim that is not a plain decimal: ask Python, once per text. */
static PyObject *resolve_slow(Builder *b, const char *s, Py_ssize_t n, int *fallback)
{
    PyObject *text = PyUnicode_DecodeUTF8(s, n, "strict");
    if (!text)
        return NULL;
    PyObject *value = PyDict_GetItemWithError(b->cache, text);
    if (value) {
        Py_DECREF(text);
        Py_INCREF(value);
        return value;
    }
    value = PyErr_Occurred() ? NULL : PyObject_CallOneArg(b->resolve, text);
    if (!value) { /* e.g. '=' has no safe constructor: the Python loader says so */
        Py_DECREF(text);
        PyErr_Clear();
        *fallback = 1;
        return NULL;
    }
    if (PyDict_SetItem(b->cache, text, value) < 0)
        Py_CLEAR(value);
    Py_DECREF(text);
    return value;
}

/* Texts starting with - + . or a digit: ints and floats in their plain decimal forms. */
static PyObject *resolve_number(Builder *b, const char *s, Py_ssize_t n, int *fallback)
{
    const char *p = s, *end = s + n;
    if (*p == '-' || *p == '+')
        p++;
    const char *digits = p;
    while (p < end && is_digit(*p))
        p++;
    Py_ssize_t nd = p - digits;
    if (nd > 0 && p == end) {
        /* [-+]?(0|[1-9][0-9]*): leading zeros are octal; long texts may pass Python's
         * int digit limit (an error Python should raise) */
        if ((nd == 1 || digits[0] != '0') && n <= 18)
            return PyLong_FromString(s, NULL, 10); /* libyaml ends every value with NUL */
    } else if (nd > 0 && *p == '.') {
        /* [-+]?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?, the float resolver's first form */
        p++;
        while (p < end && is_digit(*p))
            p++;
        int ok = p == end;
        if (!ok && (*p == 'e' || *p == 'E') && p + 1 < end && (p[1] == '-' || p[1] == '+')) {
            const char *exp = p += 2;
            while (p < end && is_digit(*p))
                p++;
            ok = p > exp && p == end;
        }
        if (ok) {
            char *stop;
            double d = PyOS_string_to_double(s, &stop, NULL); /* float(), as PyYAML calls */
            if (d == -1.0 && PyErr_Occurred())
                return NULL;
            if (stop == end)
                return PyFloat_FromDouble(d);
        }
    }
    return resolve_slow(b, s, n, fallback); /* 0x, 0b, octal, _, 1:30, .inf, dates, text */
}

static PyObject *resolve_plain(Builder *b, const char *s, Py_ssize_t n, int *fallback)
{
    switch (n ? s[0] : '\0') {
    case '\0':
        Py_RETURN_NONE; /* the empty plain scalar is null */
    case '~': case 'n': case 'N': case 'y': case 'Y': case 't': case 'T':
    case 'f': case 'F': case 'o': case 'O':
        for (size_t i = 0; i < sizeof WORDS / sizeof WORDS[0]; i++) {
            if ((Py_ssize_t)strlen(WORDS[i].text) == n && memcmp(WORDS[i].text, s, n) == 0) {
                if (WORDS[i].value == 2)
                    Py_RETURN_NONE;
                return PyBool_FromLong(WORDS[i].value);
            }
        }
        break;
    case '<': /* '<<' is a merge key */
    case '=': /* '=' is the value tag, which safe_load cannot construct */
        if (n == 1 + (s[0] == '<') && (s[0] == '=' || s[1] == '<')) {
            *fallback = 1;
            return NULL;
        }
        break;
    case '-': case '+': case '.': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return resolve_number(b, s, n, fallback);
    }
    return PyUnicode_DecodeUTF8(s, n, "strict"); /* no resolver takes it: a string */
}

/* ---- building ------------------------------------------------------------------------ */

/* Put `value` (a new reference, stolen) where the innermost open container wants it. */
static int add(Builder *b, PyObject *value, uint32_t line, uint32_t col)
{
    if (b->depth == 0) {
        b->root = value;
        return OK;
    }
    Frame *f = &b->stack[b->depth - 1];
    if (!f->is_map) {
        int rc = PyList_Append(f->obj, value);
        Py_DECREF(value);
        return rc < 0 ? FAILED : marks_push(&f->marks, line, col);
    }
    if (f->key) {
        int rc = PyDict_SetItem(f->obj, f->key, value);
        Py_DECREF(value);
        Py_CLEAR(f->key);
        return rc < 0 ? FAILED : marks_push(&f->marks, line, col);
    }
    if (PyUnicode_CheckExact(value)) { /* one str object per distinct key text */
        PyObject *shared = PyDict_SetDefault(b->keys, value, value);
        if (!shared) {
            Py_DECREF(value);
            return FAILED;
        }
        Py_INCREF(shared);
        Py_SETREF(value, shared);
    }
    int seen = PyDict_Contains(f->obj, value);
    if (seen != 0) { /* a duplicate key: the Python loader reports it */
        Py_DECREF(value);
        PyErr_Clear();
        return FALLBACK;
    }
    f->key = value;
    return marks_push(&f->marks, line, col);
}

static int open_container(Builder *b, int is_map, const yaml_mark_t *mark)
{
    if (b->depth && b->stack[b->depth - 1].is_map && !b->stack[b->depth - 1].key)
        return FALLBACK; /* a mapping or sequence as a key */
    if (b->depth == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        Frame *stack = PyMem_Realloc(b->stack, cap * sizeof *stack);
        if (!stack) {
            PyErr_NoMemory();
            return FAILED;
        }
        memset(stack + b->cap, 0, (cap - b->cap) * sizeof *stack);
        b->stack = stack;
        b->cap = cap;
    }
    PyTypeObject *type = is_map ? loc_map : loc_list;
    PyObject *obj = type->tp_new(type, empty_tuple, NULL);
    if (!obj)
        return FAILED;
    Frame *f = &b->stack[b->depth++];
    f->obj = obj;
    f->key = NULL;
    f->is_map = is_map;
    f->line = (uint32_t)mark->line + 1;
    f->col = (uint32_t)mark->column + 1;
    f->marks.n = 0;
    return marks_push(&f->marks, f->line, f->col); /* its own place comes first */
}

/* A tuple of str/int/bytes/... (no container) can never be part of a reference cycle. The GC
 * finds that out itself, but only after walking it in a few collections; keeping such tuples
 * out of its lists saved ~0.1 s of collections during the first validation after loading a
 * 10,000-node file. */
static void untrack_atomic(PyObject *tuple)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (PyObject_IS_GC(item) && (!PyTuple_CheckExact(item) || PyObject_GC_IsTracked(item)))
            return;
    }
    PyObject_GC_UnTrack(tuple);
}

static int close_container(Builder *b)
{
    Frame *f = &b->stack[b->depth - 1];
    PyObject *marks = PyBytes_FromStringAndSize((const char *)f->marks.v,
                                                (Py_ssize_t)(f->marks.n * sizeof(uint32_t)));
    if (marks && f->is_map) { /* the keys in order, so the marks still fit if it changes */
        PyObject *keys = PyTuple_New(PyDict_GET_SIZE(f->obj)), *key, *ignored;
        Py_ssize_t pos = 0, i = 0;
        while (keys && PyDict_Next(f->obj, &pos, &key, &ignored)) {
            Py_INCREF(key);
            PyTuple_SET_ITEM(keys, i++, key);
        }
        if (keys)
            untrack_atomic(keys);
        Py_SETREF(marks, keys ? PyTuple_Pack(3, b->source, keys, marks) : NULL);
        Py_XDECREF(keys);
    } else if (marks) {
        Py_SETREF(marks, PyTuple_Pack(2, b->source, marks));
    }
    if (marks)
        untrack_atomic(marks);
    int rc = marks ? PyObject_SetAttr(f->obj, str_marks, marks) : -1;
    Py_XDECREF(marks);
    PyObject *obj = f->obj;
    f->obj = NULL;
    b->depth--;
    if (rc < 0) {
        Py_DECREF(obj);
        return FAILED;
    }
    return add(b, obj, f->line, f->col);
}

static int on_event(Builder *b, yaml_event_t *e, int *documents)
{
    uint32_t line = (uint32_t)e->start_mark.line + 1, col = (uint32_t)e->start_mark.column + 1;
    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        return ++*documents > 1 ? FALLBACK : OK; /* the Python loader names the 2nd */
    case YAML_ALIAS_EVENT:
        return FALLBACK;
    case YAML_SCALAR_EVENT: {
        if (e->data.scalar.anchor || e->data.scalar.tag)
            return FALLBACK;
        const char *s = (const char *)e->data.scalar.value;
        Py_ssize_t n = (Py_ssize_t)e->data.scalar.length;
        int fallback = 0;
        PyObject *value = e->data.scalar.plain_implicit ? resolve_plain(b, s, n, &fallback)
                                                        : PyUnicode_DecodeUTF8(s, n, "strict");
        if (!value) { /* undecodable text too: the Python loader says what it says */
            if (!fallback && !PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                return FAILED;
            PyErr_Clear();
            return FALLBACK;
        }
        return add(b, value, line, col);
    }
    case YAML_SEQUENCE_START_EVENT:
        if (e->data.sequence_start.anchor || e->data.sequence_start.tag)
            return FALLBACK;
        return open_container(b, 0, &e->start_mark);
    case YAML_MAPPING_START_EVENT:
        if (e->data.mapping_start.anchor || e->data.mapping_start.tag)
            return FALLBACK;
        return open_container(b, 1, &e->start_mark);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return close_container(b);
    default:
        return OK; /* stream start/end, document end */
    }
}

static int build(Builder *b, yaml_parser_t *parser)
{
    int documents = 0;
    for (;;) {
        yaml_event_t event;
        if (!yaml_parser_parse(parser, &event))
            return FALLBACK; /* a syntax error: the Python loader words it */
        int done = event.type == YAML_STREAM_END_EVENT;
        int rc = on_event(b, &event, &documents);
        yaml_event_delete(&event);
        if (rc != OK || done)
            return rc;
    }
}

static PyObject *load(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *data, *source, *resolve;
    if (!PyArg_ParseTuple(args, "OUO:load", &data, &source, &resolve))
        return NULL;
    if (!loc_map)
        return PyErr_Format(PyExc_RuntimeError, "_yamlfast.configure() was not called");
    const char *text;
    Py_ssize_t size;
    int is_str = PyUnicode_Check(data);
    if (is_str) {
        text = PyUnicode_AsUTF8AndSize(data, &size);
        if (!text) { /* e.g. a lone surrogate: the Python loader says what */
            PyErr_Clear();
            Py_RETURN_NOTIMPLEMENTED;
        }
    } else if (PyBytes_Check(data)) {
        text = PyBytes_AS_STRING(data);
        size = PyBytes_GET_SIZE(data);
    } else {
        Py_RETURN_NOTIMPLEMENTED;
    }

    Builder b = {.source = source, .resolve = resolve};
    b.cache = PyDict_New();
    b.keys = PyDict_New();
    yaml_parser_t parser;
    int rc = FAILED;
    if (b.cache && b.keys && yaml_parser_initialize(&parser)) {
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, (size_t)size);
        if (is_str) /* as PyYAML's CParser does for str */
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
        /* Thousands of new containers would start many GC passes that find nothing. */
        int gc_was_on = PyGC_Disable();
        rc = build(&b, &parser);
        if (gc_was_on)
            PyGC_Enable();
        yaml_parser_delete(&parser);
    } else if (b.cache && b.keys) {
        PyErr_NoMemory();
    }

    for (size_t i = 0; i < b.cap; i++) {
        if (i < b.depth) {
            Py_XDECREF(b.stack[i].obj);
            Py_XDECREF(b.stack[i].key);
        }
        PyMem_Free(b.stack[i].marks.v);
    }
    PyMem_Free(b.stack);
    Py_XDECREF(b.cache);
    Py_XDECREF(b.keys);
    if (rc != OK) {
        Py_XDECREF(b.root);
        if (rc == FAILED)
            return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (!b.root) /* a stream with no document */
        Py_RETURN_NONE;
    return b.root;
}

static PyObject *configure(PyObject *module, PyObject *args)
{
    (void)module;
    PyTypeObject *m, *l;
    if (!PyArg_ParseTuple(args, "O!O!:configure", &PyType_Type, &m, &PyType_Type, &l))
        return NULL;
    if (!PyType_IsSubtype(m, &PyDict_Type) || !PyType_IsSubtype(l, &PyList_Type))
        return PyErr_Format(PyExc_TypeError, "configure(dict subtype, list subtype)");
    Py_INCREF(m);
    Py_INCREF(l);
    Py_XSETREF(loc_map, m);
    Py_XSETREF(loc_list, l);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(LocMap, LocList): the classes load() builds."},
    {"load", load, METH_VARARGS,
     "load(text, source, resolve) -> value, or NotImplemented when the Python loader must "
     "read it (see the module's source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_yamlfast",
    "Common YAML files into LocMap/LocList in C (see freeoffload.yamlfile).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__yamlfast(void)
{
    str_marks = PyUnicode_InternFromString("_marks");
    empty_tuple = PyTuple_New(0);
    if (!str_marks || !empty_tuple)
        return NULL;
    return PyModule_Create(&module_def);
}
