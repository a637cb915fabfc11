/* Paho persistence callbacks backed by the store (see mqtt_persist.c). */
#ifndef ISLEWATCH_MQTT_PERSIST_H
#define ISLEWATCH_MQTT_PERSIST_H

#include <MQTTClientPersistence.h>

struct iw_store;

/* Fill p so that Paho keeps its in-flight state in st (which must outlive the client). */
void iw_mqtt_persistence_init(MQTTClient_persistence *p, struct iw_store *st);

#endif
