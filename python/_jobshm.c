/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * _jobshm: CPython binding of libjobshm's segment API.  A Segment
 * exports its mapping through the buffer protocol, so numpy arrays made
 * on it are zero-copy and keep it mapped for as long as they live.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>

#include "jobshm.h"

typedef struct {
	PyObject_HEAD
	jobshm_ns_t *ns;
	jobshm_seg_t *seg;
} Segment;

static PyObject *JobshmError, *NotFound, *Exists, *PermissionDenied;

/* jobshm.Error, an OSError carrying libjobshm's error code and its text;
 * for ENOENT, EEXIST, EPERM and EACCES its subclass that is also the one
 * OSError(code, msg) picks: NotFound is a FileNotFoundError. */
static PyObject *
fail(const jobshm_err_t *err)
{
	PyObject *v = Py_BuildValue("(is)", err->code, err->msg);
	PyObject *type = err->code == ENOENT ? NotFound :
			 err->code == EEXIST ? Exists :
			 err->code == EPERM || err->code == EACCES ?
			 PermissionDenied : JobshmError;

	if (v) {
		PyErr_SetObject(type, v);
		Py_DECREF(v);
	}
	return NULL;
}

static jobshm_ns_t *
ns_open(void)
{
	jobshm_err_t err;
	jobshm_ns_t *ns = jobshm_ns_open(&err);

	if (!ns)
		fail(&err);
	return ns;
}

static void
seg_dealloc(Segment *self)
{
	jobshm_seg_close(self->seg);
	jobshm_ns_close(self->ns);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
seg_getbuffer(Segment *self, Py_buffer *view, int flags)
{
	return PyBuffer_FillInfo(view, (PyObject *)self,
				 jobshm_seg_addr(self->seg),
				 (Py_ssize_t)jobshm_seg_size(self->seg),
				 !jobshm_seg_writable(self->seg), flags);
}

static PyBufferProcs seg_as_buffer = {
	(getbufferproc)seg_getbuffer, NULL,
};

static PyObject *
seg_publish(Segment *self, PyObject *unused)
{
	jobshm_err_t err;
	int rc;

	(void)unused;
	Py_BEGIN_ALLOW_THREADS
	rc = jobshm_seg_publish(self->seg, &err);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return fail(&err);
	return PyBool_FromLong(rc);
}

static PyObject *
seg_fill(Segment *self, PyObject *args)
{
	Py_ssize_t seg_off, len;
	unsigned long long file_off;
	const char *path;
	jobshm_err_t err;
	int rc;

	if (!PyArg_ParseTuple(args, "nsKn", &seg_off, &path, &file_off, &len))
		return NULL;
	if (seg_off < 0 || len < 0) {
		PyErr_SetString(PyExc_ValueError, "negative offset or length");
		return NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	rc = jobshm_seg_fill(self->seg, (size_t)seg_off, path, file_off,
			     (size_t)len, &err);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return fail(&err);
	Py_RETURN_NONE;
}

static PyObject *
seg_policy(Segment *self, PyObject *args)
{
	const char *policy;
	jobshm_err_t err;

	if (!PyArg_ParseTuple(args, "s", &policy))
		return NULL;
	if (jobshm_seg_policy(self->seg, policy, &err) < 0)
		return fail(&err);
	Py_RETURN_NONE;
}

static PyObject *
seg_get_size(Segment *self, void *c)
{
	(void)c;
	return PyLong_FromSize_t(jobshm_seg_size(self->seg));
}

static PyObject *
seg_get_writable(Segment *self, void *c)
{
	(void)c;
	return PyBool_FromLong(jobshm_seg_writable(self->seg));
}

/* The array header line (magic and metadata, up to its newline): bytes. */
static PyObject *
seg_get_header(Segment *self, void *c)
{
	const char *p = jobshm_seg_addr(self->seg), *nl;
	size_t n = jobshm_seg_size(self->seg);

	(void)c;
	n = n < JOBSHM_ARRAY_HEADER ? n : JOBSHM_ARRAY_HEADER;
	nl = p ? memchr(p, '\n', n) : NULL;
	if (nl)	/* the magic ends in a newline: the metadata line follows */
		nl = memchr(nl + 1, '\n', n - (size_t)(nl + 1 - p));
	return PyBytes_FromStringAndSize(p, nl ? nl + 1 - p : 0);
}

static PyMethodDef seg_methods[] = {
	{ "publish", (PyCFunction)seg_publish, METH_NOARGS,
	  "Name the segment atomically; False if another publisher won." },
	{ "policy", (PyCFunction)seg_policy, METH_VARARGS,
	  "policy(mpol): NUMA policy of a new segment, before it is filled." },
	{ "fill", (PyCFunction)seg_fill, METH_VARARGS,
	  "fill(seg_off, path, file_off, length): read a file straight in." },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef seg_getset[] = {
	{ "size", (getter)seg_get_size, NULL, "bytes", NULL },
	{ "writable", (getter)seg_get_writable, NULL, "mapped read-write", NULL },
	{ "header", (getter)seg_get_header, NULL, "array header line", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject SegmentType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "jobshm._jobshm.Segment",
	.tp_basicsize = sizeof(Segment),
	.tp_dealloc = (destructor)seg_dealloc,
	.tp_as_buffer = &seg_as_buffer,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A mapped jobshm segment (buffer protocol).",
	.tp_methods = seg_methods,
	.tp_getset = seg_getset,
};

static PyObject *
wrap(jobshm_ns_t *ns, jobshm_seg_t *seg, const jobshm_err_t *err)
{
	Segment *s;

	if (!seg) {
		jobshm_ns_close(ns);
		return fail(err);
	}
	s = PyObject_New(Segment, &SegmentType);
	if (!s) {
		jobshm_seg_close(seg);
		jobshm_ns_close(ns);
		return NULL;
	}
	s->ns = ns;
	s->seg = seg;
	return (PyObject *)s;
}

static PyObject *
m_create(PyObject *mod, PyObject *args)
{
	const char *name;
	Py_ssize_t size;
	jobshm_ns_t *ns;
	jobshm_seg_t *seg;
	jobshm_err_t err;

	(void)mod;
	if (!PyArg_ParseTuple(args, "sn", &name, &size))
		return NULL;
	if (size < 0) {
		PyErr_SetString(PyExc_ValueError, "negative size");
		return NULL;
	}
	if (!(ns = ns_open()))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	seg = jobshm_seg_create(ns, name, (size_t)size, &err);
	Py_END_ALLOW_THREADS
	return wrap(ns, seg, &err);
}

static PyObject *
m_load(PyObject *mod, PyObject *args)
{
	const char *name, *path;
	Py_buffer hdr;
	unsigned long long off;
	Py_ssize_t len;
	jobshm_ns_t *ns;
	jobshm_seg_t *seg;
	jobshm_err_t err;

	(void)mod;
	if (!PyArg_ParseTuple(args, "sy*sKn", &name, &hdr, &path, &off, &len))
		return NULL;
	if (len < 0 || !(ns = ns_open())) {
		if (len < 0)
			PyErr_SetString(PyExc_ValueError, "negative length");
		PyBuffer_Release(&hdr);
		return NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	seg = jobshm_seg_load(ns, name, hdr.buf, (size_t)hdr.len, path, off,
			      (size_t)len, &err);
	Py_END_ALLOW_THREADS
	PyBuffer_Release(&hdr);
	return wrap(ns, seg, &err);
}

static PyObject *
m_attach(PyObject *mod, PyObject *args)
{
	const char *name;
	int writable = 0, populate = 0;
	jobshm_ns_t *ns;
	jobshm_seg_t *seg;
	jobshm_err_t err;

	(void)mod;
	if (!PyArg_ParseTuple(args, "s|pp", &name, &writable, &populate))
		return NULL;
	if (!(ns = ns_open()))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	seg = jobshm_seg_attach(ns, name, (writable ? JOBSHM_WRITABLE : 0) |
				(populate ? JOBSHM_POPULATE : 0), &err);
	Py_END_ALLOW_THREADS
	return wrap(ns, seg, &err);
}

/* fn(ns, name) for the one name argument: None, or the error raised. */
static PyObject *
by_name(PyObject *args, int (*fn)(jobshm_ns_t *, const char *,
				  jobshm_err_t *))
{
	const char *name;
	jobshm_ns_t *ns;
	jobshm_err_t err;
	int rc;

	if (!PyArg_ParseTuple(args, "s", &name) || !(ns = ns_open()))
		return NULL;
	rc = fn(ns, name, &err);
	jobshm_ns_close(ns);
	if (rc < 0)
		return fail(&err);
	Py_RETURN_NONE;
}

static PyObject *
m_unlink(PyObject *mod, PyObject *args)
{
	(void)mod;
	return by_name(args, jobshm_seg_unlink);
}

static int
list_one(const char *name, uint64_t size, void *arg)
{
	PyObject *t = Py_BuildValue("(sK)", name, (unsigned long long)size);

	if (!t || PyList_Append((PyObject *)arg, t) < 0) {
		Py_XDECREF(t);
		return -1;
	}
	Py_DECREF(t);
	return 0;
}

static PyObject *
m_list(PyObject *mod, PyObject *unused)
{
	PyObject *out;
	jobshm_ns_t *ns;
	jobshm_err_t err;
	int rc;

	(void)mod;
	(void)unused;
	if (!(ns = ns_open()))
		return NULL;
	out = PyList_New(0);
	rc = out ? jobshm_seg_list(ns, list_one, out, &err) : -1;
	jobshm_ns_close(ns);
	if (rc < 0) {
		Py_XDECREF(out);
		return PyErr_Occurred() ? NULL : fail(&err);
	}
	return out;
}

static PyObject *
m_info(PyObject *mod, PyObject *unused)
{
	uint64_t size = 0, used = 0;
	jobshm_ns_t *ns;
	jobshm_err_t err;
	PyObject *d;

	(void)mod;
	(void)unused;
	if (!(ns = ns_open()))
		return NULL;
	jobshm_ns_usage(ns, &size, &used, &err);
	d = Py_BuildValue("{s:s,s:s,s:s,s:K,s:K}", "dir", jobshm_ns_dir(ns),
			  "prefix", jobshm_ns_prefix(ns), "note",
			  jobshm_ns_note(ns), "size", (unsigned long long)size,
			  "used", (unsigned long long)used);
	jobshm_ns_close(ns);
	return d;
}

/* Node-wide locks: a capsule that releases the lock when dropped. */
static void
lock_capsule_free(PyObject *cap)
{
	jobshm_lock_release(PyCapsule_GetPointer(cap, "jobshm.lock"));
}

static PyObject *
m_lock(PyObject *mod, PyObject *args)
{
	const char *name;
	jobshm_lock_t *l;
	jobshm_ns_t *ns;
	jobshm_err_t err;
	int recovered = 0;

	(void)mod;
	if (!PyArg_ParseTuple(args, "s", &name) || !(ns = ns_open()))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	l = jobshm_lock_acquire(ns, name, &recovered, &err);
	Py_END_ALLOW_THREADS
	jobshm_ns_close(ns);
	if (!l)
		return fail(&err);
	return Py_BuildValue("(NO)", PyCapsule_New(l, "jobshm.lock",
						   lock_capsule_free),
			     recovered ? Py_True : Py_False);
}

/* The rro cache's own lock of name (None: of its index): a capsule. */
static PyObject *
m_rro_lock(PyObject *mod, PyObject *args)
{
	const char *name = NULL;
	jobshm_lock_t *l;
	jobshm_ns_t *ns;
	jobshm_err_t err;

	(void)mod;
	if (!PyArg_ParseTuple(args, "z", &name) || !(ns = ns_open()))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	l = jobshm_rro_lock(ns, name, &err);
	Py_END_ALLOW_THREADS
	jobshm_ns_close(ns);
	if (!l)
		return fail(&err);
	return PyCapsule_New(l, "jobshm.lock", lock_capsule_free);
}

static PyObject *
m_rro_lock_remove(PyObject *mod, PyObject *args)
{
	(void)mod;
	return by_name(args, jobshm_rro_lock_remove);
}

static PyObject *
m_unlock(PyObject *mod, PyObject *cap)
{
	jobshm_lock_t *l = PyCapsule_GetPointer(cap, "jobshm.lock");

	(void)mod;
	if (!l)
		return NULL;
	PyCapsule_SetDestructor(cap, NULL);
	jobshm_lock_release(l);
	Py_RETURN_NONE;
}

static PyObject *
m_barrier(PyObject *mod, PyObject *args)
{
	const char *name;
	unsigned parties;
	double timeout;
	jobshm_ns_t *ns;
	jobshm_err_t err;
	int rc;

	(void)mod;
	if (!PyArg_ParseTuple(args, "sId", &name, &parties, &timeout) ||
	    !(ns = ns_open()))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = jobshm_barrier_wait(ns, name, parties, timeout, &err);
	Py_END_ALLOW_THREADS
	jobshm_ns_close(ns);
	if (rc < 0)
		return fail(&err);
	Py_RETURN_NONE;
}

static PyObject *
m_name_check(PyObject *mod, PyObject *args)
{
	const char *name;
	jobshm_err_t err;

	(void)mod;
	if (!PyArg_ParseTuple(args, "s", &name))
		return NULL;
	if (jobshm_name_check(name, &err) < 0) {
		PyErr_SetString(PyExc_ValueError, err.msg);
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *
m_stage_name(PyObject *mod, PyObject *args)
{
	char name[JOBSHM_NAME_MAX + 1];
	const char *src;
	jobshm_err_t err;

	(void)mod;
	if (!PyArg_ParseTuple(args, "s", &src))
		return NULL;
	if (jobshm_stage_name(src, name, sizeof(name), &err) < 0) {
		PyErr_SetString(PyExc_ValueError, err.msg);
		return NULL;
	}
	return PyUnicode_FromString(name);
}

static PyObject *
m_size_format(PyObject *mod, PyObject *args)
{
	unsigned long long n;
	char buf[32];

	(void)mod;
	if (!PyArg_ParseTuple(args, "K", &n))
		return NULL;
	return PyUnicode_FromString(jobshm_size_format(n, buf, sizeof(buf)));
}

static PyMethodDef module_methods[] = {
	{ "create", m_create, METH_VARARGS, "create(name, size) -> Segment" },
	{ "attach", m_attach, METH_VARARGS, "attach(name, writable=False, populate=False)" },
	{ "load", m_load, METH_VARARGS,
	  "load(name, header, path, file_off, length) -> read-only Segment" },
	{ "unlink", m_unlink, METH_VARARGS, "unlink(name)" },
	{ "list", m_list, METH_NOARGS, "list() -> [(name, size)]" },
	{ "info", m_info, METH_NOARGS, "dir, prefix, note, size, used" },
	{ "name_check", m_name_check, METH_VARARGS, "ValueError if bad" },
	{ "stage_name", m_stage_name, METH_VARARGS,
	  "stage_name(src) -> the default name of a stage of src" },
	{ "size_format", m_size_format, METH_VARARGS,
	  "size_format(bytes) -> '1.5G', as every jobshm message writes it" },
	{ "lock", m_lock, METH_VARARGS, "lock(name) -> (handle, recovered)" },
	{ "unlock", m_unlock, METH_O, "unlock(handle)" },
	{ "rro_lock", m_rro_lock, METH_VARARGS,
	  "rro_lock(name or None) -> handle: the rro cache's own lock" },
	{ "rro_lock_remove", m_rro_lock_remove, METH_VARARGS,
	  "rro_lock_remove(name): unless held" },
	{ "barrier", m_barrier, METH_VARARGS,
	  "barrier(name, parties, timeout): timeout < 0 waits forever" },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef moddef = {
	PyModuleDef_HEAD_INIT, "_jobshm", "libjobshm segments", -1,
	module_methods, NULL, NULL, NULL, NULL,
};

/* jobshm.name, a subclass of jobshm.Error and of builtin; NULL if not. */
static PyObject *
add_error(PyObject *m, const char *name, PyObject *builtin)
{
	PyObject *bases = PyTuple_Pack(2, JobshmError, builtin), *e;
	char qual[64];

	snprintf(qual, sizeof(qual), "jobshm.%s", name);
	e = bases ? PyErr_NewException(qual, bases, NULL) : NULL;
	Py_XDECREF(bases);
	if (!e || PyModule_AddObject(m, name, e) < 0) {
		Py_XDECREF(e);
		return NULL;
	}
	Py_INCREF(e);		/* the module's reference, and ours */
	return e;
}

PyMODINIT_FUNC
PyInit__jobshm(void)
{
	PyObject *m;

	if (PyType_Ready(&SegmentType) < 0)
		return NULL;
	m = PyModule_Create(&moddef);
	if (!m)
		return NULL;
	JobshmError = PyErr_NewException("jobshm.Error", PyExc_OSError, NULL);
	Py_INCREF(JobshmError);
	PyModule_AddObject(m, "Error", JobshmError);
	if (!(NotFound = add_error(m, "NotFound", PyExc_FileNotFoundError)) ||
	    !(Exists = add_error(m, "Exists", PyExc_FileExistsError)) ||
	    !(PermissionDenied = add_error(m, "PermissionDenied",
					   PyExc_PermissionError))) {
		Py_DECREF(m);
		return NULL;
	}
	Py_INCREF(&SegmentType);
	PyModule_AddObject(m, "Segment", (PyObject *)&SegmentType);
	PyModule_AddIntConstant(m, "HEADER", JOBSHM_ARRAY_HEADER);
	PyModule_AddObject(m, "MAGIC", PyBytes_FromStringAndSize(
			   JOBSHM_ARRAY_MAGIC, sizeof(JOBSHM_ARRAY_MAGIC) - 1));
	return m;
}
